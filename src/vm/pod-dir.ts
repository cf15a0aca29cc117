// `cradle summon`: a VM directory holding everything `cradle run` needs — pod.json (the launch
// spec, the disks, port forwards) and config.img (the config disk). Image disks stay in the shared
// cache and are referenced by path. Nothing is left behind when summon fails: the image work happens
// before the directory is made, and a half-written directory is removed.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { withDefaultPath } from '../image/container-env.ts';
import { resolveUser } from '../image/users.ts';
import { capabilityMask } from '../runtime/ns/capabilities.ts';
import { KrError } from '../util/errors.ts';
import { configDisk } from './config-disk.ts';
import { imageDisk, type ImageDisk } from './image-disk.ts';
import { USER_NETWORK, validateLaunchSpec, type LaunchContainer, type LaunchSpec, type RestartPolicy, type RestartPolicyName } from './launch-spec.ts';
import type { Disk } from './qemu.ts';

export interface PortForward {
  host: number;
  guest: number;
  proto: 'tcp' | 'udp';
}

/** What pod.json holds. */
export interface PodFile {
  spec: LaunchSpec;
  disks: Disk[];
  network: { mode: 'none' } | { mode: 'user'; forwards: PortForward[] };
  /** Host directories shared into the VM (virtiofs), by tag. */
  shares?: { tag: string; source: string; readonly: boolean }[];
}

/** One container of a pod file (`--pod FILE`): the fields docker run would take. */
export interface PodContainerInput {
  name: string;
  image?: string;
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  /** docker's --restart: no, always, unless-stopped, on-failure[:MAX] */
  restart?: string;
}

export interface SummonOptions {
  image: string;
  env?: string[];
  volumes?: string[];
  memory?: string;
  cpus?: number;
  ports?: string[];
  cmd?: string[];
  /** The single container's restart policy (docker's --restart syntax). */
  restart?: string;
  /** Several containers sharing the pod's network; replaces cmd. */
  containers?: PodContainerInput[];
  trusted?: Uint8Array[];
  insecureRegistry?: boolean;
  cacheDir?: string;
  network?: 'user' | 'none';
}

export function parseMemory(text: string): number {
  const m = /^(\d+)([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) throw new KrError('invalid', `invalid memory size: ${JSON.stringify(text)} (e.g. 256m, 1g)`);
  const mult: Record<string, number> = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30, t: 2 ** 40 };
  const mib = Math.floor((Number(m[1]) * mult[m[2].toLowerCase()]) / (1 << 20));
  if (mib < 64) throw new KrError('invalid', `memory ${text} is too small for a VM: at least 64m`);
  return mib;
}

/** -v SRC:DST[:ro|:rw]: SRC an existing host directory (shared with virtiofs), DST absolute. */
export function parseVolume(text: string, i: number): { tag: string; source: string; target: string; readonly: boolean } {
  const parts = text.split(':');
  const mode = parts.length === 3 ? parts.pop() : undefined;
  if (parts.length !== 2 || !parts[0] || !parts[1].startsWith('/') || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new KrError('invalid', `invalid volume: ${JSON.stringify(text)} (SRC:DST[:ro], DST absolute)`);
  }
  const source = resolve(parts[0]);
  let st;
  try {
    st = statSync(source);
  } catch {
    throw new KrError('not-found', `-v ${text}: ${source} does not exist`);
  }
  if (!st.isDirectory()) throw new KrError('invalid', `-v ${text}: ${source} is not a directory (cradle shares directories into the VM)`);
  return { tag: `v${i}`, source, target: parts[1], readonly: mode === 'ro' };
}

/** docker's --restart values: no, always, unless-stopped, on-failure[:MAX]. */
export function parseRestart(text: string): RestartPolicy {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d{1,9}))?$/.exec(text);
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) throw new KrError('invalid', `invalid restart policy: ${JSON.stringify(text)} (no, always, unless-stopped, on-failure[:MAX])`);
  return m[2] !== undefined ? { name: 'on-failure', maximumRetryCount: Number(m[2]) } : { name: m[1] as RestartPolicyName };
}

export function parsePort(text: string): PortForward {
  const m = /^(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/.exec(text);
  const ok = m && Number(m[1]) > 0 && Number(m[1]) < 65536 && Number(m[2]) > 0 && Number(m[2]) < 65536;
  if (!ok) throw new KrError('invalid', `invalid port mapping: ${JSON.stringify(text)} (HOST:CONTAINER[/tcp|udp])`);
  return { host: Number(m![1]), guest: Number(m![2]), proto: (m![3] as 'tcp' | 'udp') ?? 'tcp' };
}

function mergeEnv(base: string[], extra: string[]): string[] {
  const out = new Map<string, string>();
  for (const kv of [...base, ...extra]) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new KrError('invalid', `invalid environment variable: ${JSON.stringify(kv)} (KEY=VALUE)`);
    out.set(kv.slice(0, eq), kv);
  }
  return withDefaultPath([...out.values()]);
}

/** USER resolved against the image's passwd/group, copied into a scratch root (users.ts reads a root). */
async function resolveIn(disk: ImageDisk, user: string) {
  const root = await mkdtemp(join(tmpdir(), 'kraud-cradle-users-'));
  try {
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc/passwd'), disk.passwd);
    await writeFile(join(root, 'etc/group'), disk.group);
    return resolveUser(root, user || undefined);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function containerOf(input: PodContainerInput, disk: ImageDisk, imageIndex: number, extraEnv: string[]): Promise<LaunchContainer> {
  const cfg = disk.config;
  const entrypoint = input.entrypoint ?? cfg.Entrypoint ?? [];
  const args = [...entrypoint, ...(input.cmd ?? (input.entrypoint ? [] : (cfg.Cmd ?? [])))];
  if (args.length === 0) throw new KrError('invalid', `container ${input.name}: no command given and the image has none`);
  const user = input.user ?? cfg.User ?? '';
  const u = await resolveIn(disk, user);
  const cwd = input.workdir ?? (cfg.WorkingDir || '/');
  if (!cwd.startsWith('/')) throw new KrError('invalid', `container ${input.name}: the working directory must be absolute: ${cwd}`);
  return {
    name: input.name,
    image: imageIndex,
    args,
    env: mergeEnv(cfg.Env ?? [], [...extraEnv, ...(input.env ?? [])]),
    cwd,
    user,
    uid: u.uid,
    gid: u.gid,
    groups: u.groups,
    caps: capabilityMask().toString(16),
    tty: false,
    openStdin: false,
    mounts: [],
    restartPolicy: parseRestart(input.restart ?? 'no'),
  };
}

/** Prepares the VM directory `dir` (which must not exist, or be empty). */
export async function summon(dir: string, opts: SummonOptions): Promise<PodFile> {
  dir = resolve(dir);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new KrError('conflict', `${dir} exists and is not empty`);
  const shares = (opts.volumes ?? []).map(parseVolume);
  const memoryMiB = parseMemory(opts.memory ?? '256m');
  const cpus = opts.cpus ?? 1;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new KrError('invalid', `invalid --cpus ${opts.cpus}: a whole number 1..64`);
  const forwards = (opts.ports ?? []).map(parsePort);
  const inputs: PodContainerInput[] = opts.containers ?? [{ name: 'main', cmd: opts.cmd && opts.cmd.length > 0 ? opts.cmd : undefined, restart: opts.restart }];
  if (inputs.length === 0) throw new KrError('invalid', 'the pod has no containers');

  // images first: nothing is written into dir before every image is ready and verified
  const sources = [...new Set(inputs.map((c) => c.image ?? opts.image))];
  const disks: ImageDisk[] = [];
  for (const s of sources) disks.push(await imageDisk(s, { trusted: opts.trusted ?? [], cacheDir: opts.cacheDir, insecureRegistry: opts.insecureRegistry }));
  const containers: LaunchContainer[] = [];
  for (const c of inputs) {
    const i = sources.indexOf(c.image ?? opts.image);
    const lc = await containerOf(c, disks[i], i, opts.env ?? []);
    lc.mounts = shares.map((sh) => ({ type: 'share' as const, tag: sh.tag, target: sh.target, readonly: sh.readonly }));
    containers.push(lc);
  }
  const podId = randomBytes(6).toString('hex');
  const spec = validateLaunchSpec({
    version: 1,
    podId,
    secret: randomBytes(32).toString('hex'),
    hostname: podId,
    resources: { memoryMiB, cpus },
    network: opts.network === 'none' ? { mode: 'none' } : USER_NETWORK,
    images: disks.map((d) => ({ digest: d.digest })),
    containers,
  });
  const pod: PodFile = {
    spec,
    disks: [{ file: join(dir, 'config.img'), serial: 'kraud-config', readonly: true }, ...disks.map((d, i) => ({ file: d.path, serial: `kraud-img${i}`, readonly: true }))],
    network: opts.network === 'none' ? { mode: 'none' } : { mode: 'user', forwards },
    shares: shares.map(({ tag, source, readonly }) => ({ tag, source, readonly })),
  };
  const made = !existsSync(dir);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.img'), configDisk(spec), { mode: 0o600 });
    await writeFile(join(dir, 'pod.json'), JSON.stringify(pod, null, 2) + '\n', { mode: 0o600 });
  } catch (err) {
    if (made) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    else for (const f of ['config.img', 'pod.json']) await rm(join(dir, f), { force: true }).catch(() => undefined);
    throw err;
  }
  return pod;
}

export async function readPodDir(dir: string): Promise<PodFile> {
  const text = await readFile(join(resolve(dir), 'pod.json'), 'utf8').catch(() => null);
  if (text === null) throw new KrError('not-found', `${dir}: not a cradle VM directory (no pod.json; make one with cradle summon)`);
  let pod: PodFile;
  try {
    pod = JSON.parse(text) as PodFile;
  } catch {
    throw new KrError('corrupt', `${dir}/pod.json is not JSON`);
  }
  pod.spec = validateLaunchSpec(pod.spec);
  for (const d of pod.disks ?? []) if (!existsSync(d.file)) throw new KrError('not-found', `${dir}: disk ${d.file} is missing (summon again)`);
  for (const sh of pod.shares ?? []) if (!existsSync(sh.source)) throw new KrError('not-found', `${dir}: shared directory ${sh.source} is missing`);
  return pod;
}
