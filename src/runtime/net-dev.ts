// Per-interface traffic counters of a network namespace, as docker stats reports them
// (StatsJSON.networks): read from /proc/<pid>/net/dev, which shows the namespace of that process.
import { readFile } from 'node:fs/promises';

export interface NetCounters {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/**
 * The interfaces of /proc/<pid>/net/dev (text: that file's content) but lo and those in `skip`;
 * undefined when none is left, as dockerd leaves `networks` out for a container without one.
 */
export function parseNetDev(text: string, skip: string[] = []): Record<string, NetCounters> | undefined {
  const out: Record<string, NetCounters> = {};
  // two header lines, then "  eth0: rx bytes packets errs drop fifo frame compressed multicast tx bytes packets errs drop …"
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === 'lo' || skip.includes(name)) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    out[name] = { rx_bytes: f[0], rx_packets: f[1], rx_errors: f[2], rx_dropped: f[3], tx_bytes: f[8], tx_packets: f[9], tx_errors: f[10], tx_dropped: f[11] };
  }
  return Object.keys(out).length ? out : undefined;
}

/** The counters of the network namespace process pid is in; undefined if it is gone or has none. */
export async function readNetDev(pid: number): Promise<Record<string, NetCounters> | undefined> {
  const text = await readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => '');
  return parseNetDev(text);
}

const COUNTERS = ['rx_bytes', 'rx_packets', 'rx_errors', 'rx_dropped', 'tx_bytes', 'tx_packets', 'tx_errors', 'tx_dropped'] as const;

/**
 * StatsJSON.networks as an untrusted peer sent it (a pod VM's vdocker), less the interfaces in
 * `skip`: only well-formed entries (non-negative numbers; at most 64 interfaces) are kept.
 */
export function networksFrom(v: unknown, skip: string[] = []): Record<string, NetCounters> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, NetCounters> = {};
  for (const [name, c] of Object.entries(v).slice(0, 64)) {
    if (skip.includes(name) || !/^[\w.@-]{1,15}$/.test(name) || typeof c !== 'object' || c === null) continue;
    const o = c as Record<string, unknown>;
    const n = (k: string) => (typeof o[k] === 'number' && Number.isFinite(o[k]) && (o[k] as number) >= 0 ? (o[k] as number) : 0);
    out[name] = Object.fromEntries(COUNTERS.map((k) => [k, n(k)])) as unknown as NetCounters;
  }
  return Object.keys(out).length ? out : undefined;
}
