// POST /kraud/containers: the host (krd's vm runtime) creates a container in the pod — held before
// its start, like every Runtime.create, so the host can attach first and see all of its output.
// Not docker's create body: the host has already merged image config and request (entrypoint+cmd,
// env, user), so this is the runtime's ContainerSpec as JSON, its image named by its index in the
// launch spec (a read-only disk mounted in the guest). Checked field by field: the request comes
// from the host, but a bad one must still be one 400 and leave nothing behind.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerConfig, HostConfig } from '../../engine/containers/config.ts';
import type { ContainerService } from '../../engine/containers/service.ts';
import type { ContainerSpec, MountSpec, Resources, Runtime } from '../../runtime/runtime.ts';
import { KrError } from '../../util/errors.ts';

export interface CreateBody {
  id: string;
  name?: string;
  /** Index of the pod's image (launch spec images[N]). */
  image: number;
  args: string[];
  env?: string[];
  cwd?: string;
  user?: string;
  tty?: boolean;
  openStdin?: boolean;
  stdinOnce?: boolean;
  hostname?: string;
  init?: boolean;
  readonlyRootfs?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** 'none': the container gets its own network namespace; 'host' (default): the pod's, as the original. */
  network?: 'none' | 'host';
  resources?: Resources;
  /** Written in the container's namespaces before it starts (the pod's network, when 'host'). */
  sysctls?: Record<string, string>;
  mounts?: PodMount[];
  /** Shown by inspect: the image reference and docker's Config the host recorded. */
  imageRef?: string;
  config?: Partial<ContainerConfig>;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** A mount as the host asks for it: a tmpfs, or one of the pod's shared host directories (by tag). */
export type PodMount = { type: 'tmpfs'; target: string } | { type: 'share'; tag: string; target: string; readonly: boolean; populate?: boolean };

/** The pod's shared host directories and files: where each tag's directory (or file) is here, and whether read-only. */
export type PodShares = Map<string, { source: string; readonly: boolean }>;

/**
 * A pod container's HostConfig as inspect shows it. Restart policies are the host's business (krd
 * starts the pod's container again), ports and DNS the VM's: vdocker never restarts or publishes.
 */
export function podHostConfig(over: Partial<HostConfig> = {}): HostConfig {
  const base: HostConfig = {
    AutoRemove: false,
    Binds: null,
    Init: null,
    Memory: 0,
    NetworkMode: 'default',
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    PortBindings: {},
    PublishAllPorts: false,
    ExtraHosts: null,
    Dns: [],
    DnsSearch: [],
    DnsOptions: [],
    CapAdd: null,
    CapDrop: null,
    ReadonlyRootfs: false,
    Privileged: false,
    PidsLimit: null,
    NanoCpus: 0,
    CpuShares: 0,
    CpuQuota: 0,
    CpuPeriod: 0,
  };
  return { ...base, ...over };
}

function bad(what: string): never {
  throw new KrError('invalid', `create: ${what}`);
}

const strs = (v: unknown, what: string): string[] | undefined => {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && !s.includes('\0'))) bad(`${what} must be a list of strings`);
  return v as string[];
};
const str = (v: unknown, what: string): string | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.includes('\0')) bad(`${what} must be a string`);
  return v;
};
const strMap = (v: unknown, what: string): Record<string, string> | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) bad(`${what} must be an object of strings`);
  return v as Record<string, string>;
};
const bool = (v: unknown, what: string): boolean => {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') bad(`${what} must be a boolean`);
  return v;
};

function resources(v: unknown): Resources | undefined {
  if (v === undefined) return undefined;
  if (!v || typeof v !== 'object') bad('resources must be an object');
  const out: Resources = {};
  for (const k of ['memoryBytes', 'nanoCpus', 'cpuShares', 'pidsLimit'] as const) {
    const n = (v as Record<string, unknown>)[k];
    if (n === undefined) continue;
    if (!Number.isSafeInteger(n) || (n as number) < 0) bad(`resources.${k} must be a whole number`);
    out[k] = n as number;
  }
  return out;
}

function mounts(v: unknown): PodMount[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) bad('mounts must be a list');
  return v.map((m, i) => {
    const o = m as Record<string, unknown>;
    if (!o || typeof o.target !== 'string' || !o.target.startsWith('/') || o.target.includes('\0')) bad(`mounts[${i}].target must be an absolute path`);
    if (o.type === 'tmpfs') return { type: 'tmpfs' as const, target: o.target as string };
    // binds name only what the launch spec shares into the VM (a tag), never a guest path
    if (o.type !== 'share' || typeof o.tag !== 'string' || !ID.test(o.tag)) bad(`mounts[${i}]: a tmpfs, or a share with a tag`);
    return { type: 'share' as const, tag: o.tag as string, target: o.target as string, readonly: bool(o.readonly, `mounts[${i}].readonly`), ...(o.populate === true ? { populate: true } : {}) };
  });
}

/** The runtime's mounts: each share becomes a bind of the directory (or file) where it is mounted here. */
function runtimeMounts(list: PodMount[] | undefined, shares: PodShares): MountSpec[] | undefined {
  return list?.map((m) => {
    if (m.type === 'tmpfs') return m;
    const sh = shares.get(m.tag);
    if (!sh) throw new KrError('invalid', `create: the pod has no shared directory ${m.tag}`);
    return { type: 'bind', source: sh.source, target: m.target, readonly: m.readonly || sh.readonly, ...(m.populate ? { populate: true } : {}) };
  });
}

export function parseCreateBody(v: unknown): CreateBody {
  const o = v as Record<string, unknown>;
  if (!o || typeof o !== 'object' || Array.isArray(o)) bad('body must be an object');
  if (typeof o.id !== 'string' || !ID.test(o.id)) bad(`id must match ${ID}`);
  if (o.name !== undefined && (typeof o.name !== 'string' || !ID.test(o.name))) bad(`name must match ${ID}`);
  if (!Number.isInteger(o.image) || (o.image as number) < 0) bad('image must be an image index');
  const args = strs(o.args, 'args');
  if (!args?.length) bad('no command given');
  const network = o.network ?? 'host';
  if (network !== 'none' && network !== 'host') bad('network must be none or host');
  if (o.config !== undefined && (!o.config || typeof o.config !== 'object')) bad('config must be an object');
  return {
    id: o.id as string,
    name: o.name as string | undefined,
    image: o.image as number,
    args: args!,
    env: strs(o.env, 'env'),
    cwd: str(o.cwd, 'cwd'),
    user: str(o.user, 'user'),
    tty: bool(o.tty, 'tty'),
    openStdin: bool(o.openStdin, 'openStdin'),
    stdinOnce: bool(o.stdinOnce, 'stdinOnce'),
    hostname: str(o.hostname, 'hostname'),
    init: bool(o.init, 'init'),
    readonlyRootfs: bool(o.readonlyRootfs, 'readonlyRootfs'),
    capAdd: strs(o.capAdd, 'capAdd'),
    capDrop: strs(o.capDrop, 'capDrop'),
    network,
    resources: resources(o.resources),
    sysctls: strMap(o.sysctls, 'sysctls'),
    mounts: mounts(o.mounts),
    imageRef: str(o.imageRef, 'imageRef'),
    config: o.config as Partial<ContainerConfig> | undefined,
  };
}

/** The pod's /etc/hosts, resolv.conf and hostname (init wrote them; under krd, krd's own), as binds. */
function etcBinds(etcDir: string | undefined): MountSpec[] {
  if (!etcDir) return [];
  return ['hosts', 'resolv.conf', 'hostname'].filter((f) => existsSync(join(etcDir, f))).map((f) => ({ type: 'bind' as const, source: join(etcDir, f), target: `/etc/${f}` }));
}

/** Creates it in the runtime, then records it; a failed record removes the runtime's container. */
export async function createInPod(runtime: Runtime, containers: ContainerService, imageDirs: string[], shares: PodShares, b: CreateBody, etcDir?: string): Promise<{ Id: string }> {
  const dir = imageDirs[b.image];
  if (dir === undefined) throw new KrError('invalid', `create: the pod has no image ${b.image}`);
  const name = b.name ?? b.id;
  if (containers.records.get(b.id) || containers.records.byName(name)) throw new KrError('conflict', `container ${name} already exists`);
  const spec: ContainerSpec = {
    id: b.id,
    rootfs: { dir },
    args: b.args,
    env: b.env,
    cwd: b.cwd,
    user: b.user,
    tty: b.tty,
    openStdin: b.openStdin,
    hostname: b.hostname,
    init: b.init,
    readonlyRootfs: b.readonlyRootfs,
    capAdd: b.capAdd,
    capDrop: b.capDrop,
    network: b.network,
    resources: b.resources,
    sysctls: b.sysctls,
    mounts: [...etcBinds(etcDir), ...(runtimeMounts(b.mounts, shares) ?? [])],
  };
  await runtime.create(spec);
  try {
    const k = b.config ?? {};
    containers.records.insert({
      id: b.id,
      name,
      image_id: '',
      image_ref: b.imageRef ?? '',
      runtime: runtime.name,
      config: {
        Hostname: b.hostname ?? '',
        Domainname: '',
        User: b.user ?? '',
        AttachStdin: false,
        AttachStdout: false,
        AttachStderr: false,
        Tty: !!b.tty,
        OpenStdin: !!b.openStdin,
        StdinOnce: !!b.stdinOnce,
        Env: b.env ?? [],
        Cmd: k.Cmd ?? b.args,
        Entrypoint: k.Entrypoint ?? null,
        Image: b.imageRef ?? '',
        WorkingDir: b.cwd ?? '',
        Labels: k.Labels ?? {},
        ...(k.StopSignal ? { StopSignal: k.StopSignal } : {}),
      },
      hostConfig: podHostConfig({
        Init: b.init ?? null,
        Memory: b.resources?.memoryBytes ?? 0,
        NetworkMode: b.network ?? 'host',
        CapAdd: b.capAdd ?? null,
        CapDrop: b.capDrop ?? null,
        ReadonlyRootfs: !!b.readonlyRootfs,
        PidsLimit: b.resources?.pidsLimit ?? null,
        NanoCpus: b.resources?.nanoCpus ?? 0,
        CpuShares: b.resources?.cpuShares ?? 0,
      }),
    });
  } catch (err) {
    await runtime.reattach(b.id).then((c) => c.delete({ force: true })).catch(() => undefined);
    throw err;
  }
  return { Id: b.id };
}
