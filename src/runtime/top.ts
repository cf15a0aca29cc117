// docker top's rules over the host's ps (procps): run `ps ARGS -q PIDS` (or, for options that
// cannot be combined with -q, plain `ps ARGS`), take the header's columns as the titles, keep
// the rows whose PID column is one of the container's, and split each row into as many fields as
// there are titles, the last one keeping its spaces (the command line).
import { execFile } from 'node:child_process';
import { KrError } from '../util/errors.ts';
import type { TopResult } from './runtime.ts';

function ps(args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('ps', args, { maxBuffer: 32 << 20, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout) => resolve(err ? null : stdout));
  });
}

/** Docker refuses arguments that would make ps read options from elsewhere. */
function checkArgs(args: string[]): void {
  for (const a of args) if (a.includes('\0')) throw new KrError('invalid', 'ps_args contains a NUL byte');
}

export function parsePs(output: string, pids: Set<number>): TopResult {
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const titles = (lines[0] ?? '').trim().split(/\s+/);
  const pidAt = titles.indexOf('PID');
  if (pidAt < 0) throw new KrError('invalid', `Couldn't find PID field in ps output`);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (!pids.has(Number(fields[pidAt]))) continue;
    processes.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')]);
  }
  return { titles, processes };
}

export async function psTop(pids: number[], psArgs: string[]): Promise<TopResult> {
  const args = psArgs.length > 0 ? psArgs : ['-ef'];
  checkArgs(args);
  const wanted = new Set(pids);
  if (pids.length === 0) {
    const header = await ps([...args, '-q', String(process.pid)]);
    return { titles: parsePs(header ?? 'PID\n', wanted).titles, processes: [] };
  }
  const out = (await ps([...args, '-q', pids.join(',')])) ?? (await ps(args));
  if (out === null) throw new KrError('invalid', `ps ${args.join(' ')} failed`);
  return parsePs(out, wanted);
}
