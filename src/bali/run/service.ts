// What the service starts with, applied as docker applies an image config: Env (plus docker's
// default PATH when the image sets none, and HOME from the user), WorkingDir, User,
// Entrypoint + Cmd; -e, -w, -u, --entrypoint and `-- CMD` override. Nothing else from the
// caller's environment passes through.
import fs from 'node:fs';
import path from 'node:path';
import { KrError } from '../../util/errors.ts';
import type { ContainerConfig } from '../../image/types.ts';
import type { RunOptions } from './options.ts';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

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

interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Lines of an /etc/passwd or /etc/group inside the root (never following links out of it). */
function readDbFile(root: string, file: string): string[][] {
  try {
    const p = path.join(root, file);
    if (fs.lstatSync(p).isSymbolicLink()) return [];
    return fs
      .readFileSync(p, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/** Resolves USER[:GROUP] (names or numbers) against the image's own passwd and group files. */
export function resolveUser(root: string, spec: string | undefined): { uid: number; gid: number; groups: number[]; home: string } {
  const [userPart, groupPart] = (spec || '0').split(':');
  const passwd = readDbFile(root, 'etc/passwd');
  const groupDb = readDbFile(root, 'etc/group');
  let account: Account | undefined;
  const byField = (i: number, v: string) => passwd.find((f) => f[i] === v);
  const row = /^\d+$/.test(userPart) ? byField(2, userPart) : byField(0, userPart);
  if (row) account = { name: row[0], uid: Number(row[2]), gid: Number(row[3]), home: row[5] || '/' };
  else if (/^\d+$/.test(userPart)) account = { name: '', uid: Number(userPart), gid: Number(userPart === '0' ? 0 : userPart), home: '/' };
  else throw new KrError('invalid', `unable to find user ${userPart}: no matching entries in the image's /etc/passwd`);
  let gid = account.gid;
  if (groupPart !== undefined) {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groupDb.find((f) => f[0] === groupPart);
      if (!g) throw new KrError('invalid', `unable to find group ${groupPart}: no matching entries in the image's /etc/group`);
      gid = Number(g[2]);
    }
  }
  // Supplementary groups: the ones listing the user by name (docker does the same).
  const groups = new Set<number>([gid]);
  if (account.name && groupPart === undefined) {
    for (const g of groupDb) if ((g[3] ?? '').split(',').includes(account.name)) groups.add(Number(g[2]));
  }
  return { uid: account.uid, gid, groups: [...groups], home: account.home };
}

export function serviceSpec(root: string, config: ContainerConfig, opts: RunOptions, callerEnv: NodeJS.ProcessEnv): ServiceSpec {
  const env = [...(config.Env ?? [])];
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
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
