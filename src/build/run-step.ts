// RUN: the command runs inside the rootfs being built (an overlay whose upper dir becomes the
// step's layer), in new mount and pid namespaces with the host network (so apt-get and apk
// reach their mirrors), with /proc, /sys, the host's /dev and resolv.conf, as USER, in WORKDIR,
// with ENV and ARG. The same helper as `bali run` does the mounts, pivot_root and user switch.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { resolveUser } from '../image/users.ts';
import { DEFAULT_PATH } from '../image/container-env.ts';
import { ENTER_HELPER } from '../bali/run/run.ts';
import { makeMountPoint } from '../bali/run/mount-points.ts';

export interface RunSpec {
  root: string;
  argv: string[];
  env: Map<string, string>;
  user?: string;
  workdir: string;
  network?: string;
  output: (chunk: Buffer) => void;
}

export function runInRoot(spec: RunSpec): Promise<number> {
  const user = resolveUser(spec.root, spec.user);
  for (const d of ['proc', 'sys', 'dev']) makeMountPoint(spec.root, `/${d}`, 'dir');
  makeMountPoint(spec.root, spec.workdir, 'dir');
  const binds: string[] = [];
  if (fs.existsSync('/etc/resolv.conf') && spec.network !== 'none') {
    const target = makeMountPoint(spec.root, '/etc/resolv.conf', 'file');
    binds.push('--bind', `/etc/resolv.conf:${path.relative(spec.root, target)}:ro`);
  }
  const env: Record<string, string> = { PATH: DEFAULT_PATH };
  for (const [k, v] of spec.env) env[k] = v;
  const unshare = ['--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private'];
  if (spec.network === 'none') unshare.push('--net');
  const args = [...unshare, ENTER_HELPER, 'enter', spec.root, '--keep-run', ...binds, '--uid', String(user.uid), '--gid', String(user.gid), '--groups', user.groups.join(','), '--cwd', spec.workdir, '--', ...spec.argv];
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', spec.output);
    child.stderr.on('data', spec.output);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
