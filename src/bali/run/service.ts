// What the service starts with, applied as docker applies an image config: Env (plus docker's
// default PATH when the image sets none, and HOME from the user), WorkingDir, User,
// Entrypoint + Cmd; -e, -w, -u, --entrypoint and `-- CMD` override. Nothing else from the
// caller's environment passes through.
import { KrError } from '../../util/errors.ts';
import type { ContainerConfig } from '../../image/types.ts';
import type { RunOptions } from './options.ts';
import { resolveUser } from '../../image/users.ts';
import { withDefaultPath } from '../../image/container-env.ts';

export interface ServiceSpec {
  argv: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
}

function setEnv(env: string[], entry: string): void {
  const key = entry.slice(0, entry.indexOf('='));
  const i = env.findIndex((e) => e.startsWith(key + '='));
  if (i >= 0) env[i] = entry;
  else env.push(entry);
}

export function serviceSpec(root: string, config: ContainerConfig, opts: RunOptions, callerEnv: NodeJS.ProcessEnv): ServiceSpec {
  const env = withDefaultPath(config.Env ?? []);
  for (const e of opts.env) {
    if (e.includes('=')) setEnv(env, e);
    else if (callerEnv[e] !== undefined) setEnv(env, `${e}=${callerEnv[e]}`);
  }
  const user = resolveUser(root, opts.user ?? config.User);
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
  const entrypoint = opts.entrypoint !== undefined ? (opts.entrypoint ? [opts.entrypoint] : []) : (config.Entrypoint ?? []);
  // docker: a new entrypoint drops the image's Cmd; `-- CMD` replaces Cmd.
  const cmd = opts.command.length > 0 ? opts.command : opts.entrypoint !== undefined ? [] : (config.Cmd ?? []);
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) throw new KrError('invalid', 'no command: the image has no Entrypoint or Cmd; give one after --');
  const cwd = opts.workdir ?? (config.WorkingDir || '/');
  if (!cwd.startsWith('/')) throw new KrError('invalid', `working directory "${cwd}" is not absolute`);
  return { argv, env, cwd, uid: user.uid, gid: user.gid, groups: user.groups };
}
