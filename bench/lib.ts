// Shared bench pieces: side-by-side timing (ours and the baseline alternate, so both see the
// same machine state), medians, and a table row per comparison.
import { spawn } from 'node:child_process';
import os from 'node:os';

export interface Row {
  name: string;
  ours: number; // median seconds
  /** Median seconds; absent for rows with an absolute goal only (printed as —). */
  baseline?: number;
  baselineName: string;
  /** Work size in bytes, to print throughput. */
  bytes?: number;
  goal?: string;
  note?: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs setup+ours and setup+baseline alternately `runs` times; returns median seconds of each. */
export async function sideBySide(
  runs: number,
  ours: () => Promise<void>,
  baseline: () => Promise<void>,
  before: () => Promise<void> = async () => {},
): Promise<{ ours: number; baseline: number }> {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const [fn, into] of (i % 2 ? [[baseline, b], [ours, a]] : [[ours, a], [baseline, b]]) as [() => Promise<void>, number[]][]) {
      await before();
      const t0 = process.hrtime.bigint();
      await fn();
      into.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return { ours: median(a), baseline: median(b) };
}

/**
 * Like sideBySide for any number of contenders: each round runs all of them, in an order rotated
 * per round. A contender may return its own measured seconds (e.g. a span inside its work);
 * otherwise its wall time counts. Returns every sample per name.
 */
export async function alternate(runs: number, contenders: Record<string, () => Promise<number | void>>): Promise<Record<string, number[]>> {
  const names = Object.keys(contenders);
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(i + j) % names.length];
      const t0 = process.hrtime.bigint();
      const own = await contenders[name]();
      out[name].push(typeof own === 'number' ? own : Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return out;
}

export function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: opts.env ?? process.env });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim().split('\n').pop()}`))));
  });
}

const mb = (bytes: number, s: number): string => `${(bytes / 1e6 / s).toFixed(0)} MB/s`;

export function formatRow(r: Row): string {
  const b = r.baseline;
  const cells = [
    r.name,
    `${r.ours.toFixed(3)} s${r.bytes ? ` (${mb(r.bytes, r.ours)})` : ''}`,
    b === undefined ? r.baselineName || '—' : `${r.baselineName}: ${b.toFixed(3)} s${r.bytes ? ` (${mb(r.bytes, b)})` : ''}`,
    // b / ours > 1: we are faster
    b === undefined ? '—' : `${(b / r.ours).toFixed(2)}× baseline speed (time ratio ${(r.ours / b).toFixed(2)})`,
    r.goal ?? '',
  ];
  return `| ${cells.join(' | ')} |`;
}

export function header(): string {
  return [
    `machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`,
    '| benchmark | ours (median) | baseline (median) | ratio | goal |',
    '|---|---|---|---|---|',
  ].join('\n');
}
