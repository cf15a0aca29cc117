// docker top's rules over the host's ps (procps): run `ps ARGS -q PIDS` (or, for options that
// cannot be combined with -q, plain `ps ARGS`), take the header's columns as the titles, keep
// the rows whose PID column is one of the container's, and split each row into as many fields as
// there are titles, the last one keeping its spaces (the command line). Where there is no ps (a
// pod VM's guest), ./proc-ps.ts writes its -ef or aux output from /proc instead.
import { execFile } from 'node:child_process';
import { KrError } from '../util/errors.ts';
import { procPs } from './proc-ps.ts';
import type { TopResult } from './runtime.ts';

/** ps's output; null when it failed; 'missing' when there is no ps to run. */
function ps(args: string[]): Promise<string | null | 'missing'> {
  return new Promise((resolve) => {
    execFile('ps', args, { maxBuffer: 32 << 20, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout) => resolve(err ? ((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : null) : stdout));
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
  let out = await ps([...args, '-q', String(pids.length ? pids.join(',') : process.pid)]);
  if (out === 'missing') return parsePs(await procPs(args, pids), wanted);
  if (pids.length === 0) return { titles: parsePs(out ?? 'PID\n', wanted).titles, processes: [] };
  out ??= await ps(args);
  if (out === null || out === 'missing') throw new KrError('invalid', `ps ${args.join(' ')} failed`);
  return parsePs(out, wanted);
}
