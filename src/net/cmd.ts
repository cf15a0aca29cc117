// Runs the iproute2/iptables/util-linux programs the network code drives, with stdin (for
// `ip -batch -`), and turns a failure into one line naming the command and its complaint.
import { spawn } from 'node:child_process';
import { KrError } from '../util/errors.ts';

export function run(argv: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new KrError('unavailable', `${argv[0]}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new KrError('unavailable', `${argv.join(' ').slice(0, 120)}: ${err.trim().split('\n').pop() || `exit ${code}`}`));
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** `ip -batch -` with one command per line; -force goes on after a failing line (for teardown). */
export function ipBatch(lines: string[], opts: { netns?: string; force?: boolean } = {}): Promise<string> {
  const ip = ['ip', ...(opts.force ? ['-force'] : []), '-batch', '-'];
  return run(opts.netns ? ['nsenter', `--net=${opts.netns}`, ...ip] : ip, lines.join('\n') + '\n');
}
