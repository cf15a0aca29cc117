// The guest's answers the vm runtime reads, checked before use: the guest is hostile, so a
// malformed answer is a clear error (or a neutral value), never a crash or a wrong type in krd.
import { KrError } from '../../util/errors.ts';
import type { ExitStatus, PathStat, ProcessState, Stats, TopResult } from '../runtime.ts';
import { networksFrom } from '../net-dev.ts';

/** vdocker's /kraud/containers/ID/state. */
export function checkState(v: unknown): ProcessState {
  const o = v as { status?: unknown; pid?: unknown; exit?: Record<string, unknown> | null };
  if (!o || (o.status !== 'created' && o.status !== 'running' && o.status !== 'exited')) throw new Error('status');
  if (!Number.isSafeInteger(o.pid)) throw new Error('pid');
  if (o.status !== 'exited') return { status: o.status, ...((o.pid as number) > 0 ? { pid: o.pid as number } : {}) };
  const e = o.exit;
  if (!e || !Number.isSafeInteger(e.exitCode) || typeof e.signal !== 'string' || typeof e.finishedAt !== 'string') throw new Error('exit');
  const at = new Date(e.finishedAt);
  const exit: ExitStatus = { exitCode: e.exitCode as number, finishedAt: Number.isFinite(at.getTime()) ? at : new Date(0) };
  if (/^SIG[A-Z0-9]{1,10}$/.test(e.signal)) exit.signal = e.signal;
  return { status: 'exited', exit };
}

/** docker's one-shot stats, what the runtime seam keeps of them. */
export function checkStats(v: unknown): Stats {
  const o = v as Record<string, Record<string, unknown>>;
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : 0);
  const mem = o?.memory_stats ?? {};
  const usage = (o?.cpu_stats?.cpu_usage ?? {}) as Record<string, unknown>;
  const read = new Date(typeof o?.read === 'string' ? (o.read as unknown as string) : NaN);
  return {
    memory: { usage: num(mem.usage), limit: typeof mem.limit === 'number' && mem.limit > 0 ? mem.limit : null },
    cpuNanos: num(usage.total_usage),
    pids: num(o?.pids_stats?.current),
    // kraud0 is the pod's control channel to vdocker, not the container's
    networks: networksFrom(o?.networks, ['kraud0']),
    read: Number.isFinite(read.getTime()) ? read : new Date(),
  };
}

/** docker top's answer. */
export function checkTop(v: unknown): TopResult {
  const o = v as { Titles?: unknown; Processes?: unknown };
  const strs = (a: unknown): a is string[] => Array.isArray(a) && a.every((x) => typeof x === 'string');
  if (!strs(o?.Titles) || !Array.isArray(o.Processes) || !o.Processes.every(strs)) throw new Error('Titles/Processes');
  return { titles: o.Titles, processes: o.Processes as string[][] };
}

/** X-Docker-Container-Path-Stat (base64 JSON). */
export function pathStatOf(label: string, header: string | string[] | undefined): PathStat {
  if (typeof header !== 'string' || header.length > 64 * 1024) throw new KrError('unavailable', `${label}: no path stat in the answer`);
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new KrError('unavailable', `${label}: a path stat that is not JSON`);
  }
  if (typeof v?.name !== 'string' || !Number.isSafeInteger(v.size) || !Number.isSafeInteger(v.mode) || typeof v.mtime !== 'string' || typeof v.linkTarget !== 'string') {
    throw new KrError('unavailable', `${label}: a malformed path stat`);
  }
  return { name: v.name, size: v.size as number, mode: v.mode as number, mtime: v.mtime, linkTarget: v.linkTarget };
}
