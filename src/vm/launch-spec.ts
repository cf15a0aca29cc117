// The launch spec: everything a pod's VM needs to know, written by the host (cradle summon, krd's
// vm runtime) and read inside the guest by init (containers to start) and vdocker (its secret,
// its listen address). It travels on the config disk (./config-disk.ts). The guest treats it as
// trusted input from the host; the host must treat anything coming BACK from the guest as hostile.
//
// Guest layout this spec drives (see src/vm/README.md):
//   image disks   virtio-blk, serial "kraud-img<N>", erofs, mounted read-only at /run/cradle/img/<N>
//   tools disk    virtio-blk, serial "kraud-tools" (optional), erofs, mounted at /run/cradle/tools
//   containers    krd-shim state dirs under /run/cradle/containers/<name>/ (NsRuntime's layout, so
//                 `new NsRuntime('/run/cradle').reattach(name)` works inside the guest)
//   the spec      /run/cradle/launch.json (mode 0600)
import { KrError } from '../util/errors.ts';

export const LAUNCH_SPEC_VERSION = 1;

export type RestartPolicyName = 'no' | 'always' | 'on-failure' | 'unless-stopped';

export interface RestartPolicy {
  name: RestartPolicyName;
  /** on-failure only: give up after this many restarts (0 = no limit), like docker's MaximumRetryCount. */
  maximumRetryCount?: number;
}

export type LaunchMount =
  /** A host directory shared into the VM (virtiofs, this tag; mounted at /run/cradle/shares/<tag>) and bound into the container. */
  | { type: 'share'; tag: string; target: string; readonly?: boolean }
  /** A fresh tmpfs in the container. */
  | { type: 'tmpfs'; target: string };

export interface LaunchContainer {
  /** Unique in the pod; the container's state dir name in the guest. [A-Za-z0-9][A-Za-z0-9_.-]* */
  name: string;
  /** Index into LaunchSpec.images: the read-only lower layer of this container's overlay root. */
  image: number;
  /** Full command (entrypoint + cmd joined by the host); never empty. */
  args: string[];
  /** KEY=VALUE, docker's default PATH already added by the host when the image sets none. */
  env: string[];
  /** Absolute working directory ("/" when the image sets none). */
  cwd: string;
  /** USER[:GROUP] as given (docker inspect shows it) ... */
  user: string;
  /** ... and resolved by the host against the image's /etc/passwd and /etc/group (the guest has no resolver). */
  uid: number;
  gid: number;
  groups: number[];
  /** Capability mask as hex (krd-shim --caps), docker's default set with cap-add/drop applied. */
  caps: string;
  hostname?: string;
  tty: boolean;
  openStdin: boolean;
  readonlyRootfs?: boolean;
  mounts: LaunchMount[];
  restartPolicy: RestartPolicy;
}

export interface LaunchShare {
  tag: string;
  readonly: boolean;
  /** A host file, not a directory: the share holds only it, as SHARED_FILE (./virtiofs.ts). */
  file?: boolean;
}

/** The name of the one file in a file share (LaunchShare.file). */
export const SHARED_FILE = 'file';

export interface LaunchImage {
  /** The image's manifest digest (sha256:…); the disk was built from its flattened rootfs. */
  digest: string;
}

export type LaunchNetwork =
  /** No network device: lo only. */
  | { mode: 'none' }
  /**
   * One virtio-net device, eth0 (found by its MAC), configured statically by init. Standalone cradle
   * uses qemu's user networking (slirp): 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3. Under krd
   * (a tap in the container's network namespace) it is the address krd's IPAM gave the container.
   */
  | { mode: 'static'; mac: string; address: string; gateway?: string; dns: string[] };

/**
 * A second virtio-net device, kraud0, only for the host to reach vdocker (qemu user networking with
 * restrict=on: no way out of the VM through it, one port forward in). krd's pods have it so that
 * eth0 can be the container's network.
 */
export interface LaunchControlNetwork {
  mac: string;
  /** address/prefix */
  address: string;
}

/** Contents of the pod's /etc files as the host wrote them (krd's hosts and resolv.conf); absent: init writes its own. */
export interface LaunchEtc {
  hosts?: string;
  resolvConf?: string;
}

export interface LaunchSpec {
  version: typeof LAUNCH_SPEC_VERSION;
  podId: string;
  /** Per-pod secret (64 hex chars); vdocker refuses every request that does not carry it. */
  secret: string;
  hostname: string;
  resources: {
    /** Guest RAM in MiB (qemu -m). */
    memoryMiB: number;
    /** vCPUs (qemu -smp). */
    cpus: number;
  };
  network: LaunchNetwork;
  control?: LaunchControlNetwork;
  etc?: LaunchEtc;
  images: LaunchImage[];
  /** Started by init in order. May be empty only when vdocker runs (it creates containers on request). */
  containers: LaunchContainer[];
  /**
   * Host directories init mounts (virtiofs, at /run/cradle/shares/<tag>) whether or not a container
   * above uses them: the ones vdocker binds into the containers it creates (krd's binds). Absent: none.
   */
  shares?: LaunchShare[];
  /**
   * The guest's Docker API server. init starts `argv` (paths inside the guest, typically on the
   * tools disk) once the containers have been started, with env KRAUD_LAUNCH=/run/cradle/launch.json.
   * Absent: no vdocker (standalone cradle run).
   */
  vdocker?: { argv: string[]; listen: { address: string; port: number } };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const POLICIES: RestartPolicyName[] = ['no', 'always', 'on-failure', 'unless-stopped'];

function bad(what: string): never {
  throw new KrError('invalid', `launch spec: ${what}`);
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const noNul = (s: string) => !s.includes('\0');

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => isStr(s) && noNul(s))) bad(`${what} must be a list of strings without NUL`);
  return v as string[];
}

function ipv4(v: unknown, what: string, prefix: boolean): string {
  const re = prefix ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/ : /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
  const m = isStr(v) ? re.exec(v) : null;
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || (prefix && Number(m[5]) > 32)) bad(`${what}: not an IPv4 address${prefix ? '/prefix' : ''}: ${JSON.stringify(v)}`);
  return v as string;
}

function absPath(v: unknown, what: string): string {
  if (!isStr(v) || !v.startsWith('/') || !noNul(v) || v.split('/').includes('..')) bad(`${what} must be an absolute path without ..`);
  return v as string;
}

function validateMount(m: unknown, what: string): LaunchMount {
  const o = m as Record<string, unknown>;
  if (!o || typeof o !== 'object') bad(`${what} must be an object`);
  absPath(o.target, `${what}.target`);
  if (o.type === 'tmpfs') return { type: 'tmpfs', target: o.target as string };
  if (o.type === 'share') {
    if (!isStr(o.tag) || !NAME.test(o.tag)) bad(`${what}.tag must match ${NAME}`);
    return { type: 'share', tag: o.tag as string, target: o.target as string, readonly: !!o.readonly };
  }
  return bad(`${what}.type must be share or tmpfs`);
}

function validateContainer(c: unknown, i: number, images: number): LaunchContainer {
  const w = `containers[${i}]`;
  const o = c as Record<string, unknown>;
  if (!o || typeof o !== 'object') bad(`${w} must be an object`);
  if (!isStr(o.name) || !NAME.test(o.name)) bad(`${w}.name must match ${NAME}`);
  if (!isInt(o.image, 0, images - 1)) bad(`${w}.image must index images (0..${images - 1})`);
  const args = strings(o.args, `${w}.args`);
  if (args.length === 0) bad(`${w}.args: no command given`);
  const env = strings(o.env, `${w}.env`);
  for (const kv of env) if (kv.indexOf('=') <= 0) bad(`${w}.env: not KEY=VALUE: ${JSON.stringify(kv)}`);
  absPath(o.cwd, `${w}.cwd`);
  if (!isStr(o.user) || !noNul(o.user)) bad(`${w}.user must be a string`);
  if (!isInt(o.uid, 0, 0xfffffffe) || !isInt(o.gid, 0, 0xfffffffe)) bad(`${w}.uid/gid must be numbers`);
  if (!Array.isArray(o.groups) || !o.groups.every((g) => isInt(g, 0, 0xfffffffe))) bad(`${w}.groups must be numbers`);
  if (!isStr(o.caps) || !/^[0-9a-f]{1,16}$/.test(o.caps)) bad(`${w}.caps must be a hex mask`);
  if (o.hostname !== undefined && (!isStr(o.hostname) || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(o.hostname))) bad(`${w}.hostname is not a host name`);
  if (!Array.isArray(o.mounts)) bad(`${w}.mounts must be a list`);
  const rp = o.restartPolicy as Record<string, unknown>;
  if (!rp || !POLICIES.includes(rp.name as RestartPolicyName)) bad(`${w}.restartPolicy.name must be one of ${POLICIES.join(', ')}`);
  if (rp.maximumRetryCount !== undefined && !isInt(rp.maximumRetryCount, 0, 1e9)) bad(`${w}.restartPolicy.maximumRetryCount must be a count`);
  return {
    name: o.name as string,
    image: o.image as number,
    args,
    env,
    cwd: o.cwd as string,
    user: o.user as string,
    uid: o.uid as number,
    gid: o.gid as number,
    groups: o.groups as number[],
    caps: o.caps as string,
    ...(o.hostname !== undefined ? { hostname: o.hostname as string } : {}),
    tty: !!o.tty,
    openStdin: !!o.openStdin,
    readonlyRootfs: !!o.readonlyRootfs,
    mounts: (o.mounts as unknown[]).map((m, j) => validateMount(m, `${w}.mounts[${j}]`)),
    restartPolicy: { name: rp.name as RestartPolicyName, ...(rp.maximumRetryCount !== undefined ? { maximumRetryCount: rp.maximumRetryCount as number } : {}) },
  };
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

function validateNetwork(n: unknown): LaunchNetwork {
  const o = n as Record<string, unknown>;
  if (o && o.mode === 'none') return { mode: 'none' };
  if (!o || o.mode !== 'static') bad('network.mode must be none or static');
  if (!isStr(o.mac) || !MAC.test(o.mac)) bad('network.mac must be a lower-case MAC address');
  const address = ipv4(o.address, 'network.address', true);
  const gateway = o.gateway === undefined ? undefined : ipv4(o.gateway, 'network.gateway', false);
  const dns = strings(o.dns, 'network.dns').map((d, i) => ipv4(d, `network.dns[${i}]`, false));
  return { mode: 'static', mac: o.mac as string, address, ...(gateway ? { gateway } : {}), dns };
}

function validateControl(c: unknown, network: LaunchNetwork): LaunchControlNetwork {
  const o = c as Record<string, unknown>;
  if (!o || typeof o !== 'object') bad('control must be an object');
  if (!isStr(o.mac) || !MAC.test(o.mac)) bad('control.mac must be a lower-case MAC address');
  if (network.mode === 'static' && network.mac === o.mac) bad('control.mac must differ from network.mac');
  return { mac: o.mac as string, address: ipv4(o.address, 'control.address', true) };
}

/** File contents for init to write verbatim: text without NUL, bounded (the config disk holds the spec twice). */
function validateEtc(e: unknown): LaunchEtc {
  const o = e as Record<string, unknown>;
  if (!o || typeof o !== 'object') bad('etc must be an object');
  const out: LaunchEtc = {};
  for (const k of ['hosts', 'resolvConf'] as const) {
    if (o[k] === undefined) continue;
    const v = o[k];
    if (!isStr(v) || !noNul(v) || v.length > 64 * 1024) bad(`etc.${k} must be text without NUL, at most 64 KiB`);
    out[k] = v;
  }
  return out;
}

/** Checks a parsed launch spec field by field; returns a clean copy or throws one 'invalid' line. */
export function validateLaunchSpec(v: unknown): LaunchSpec {
  const o = v as Record<string, unknown>;
  if (!o || typeof o !== 'object') bad('not an object');
  if (o.version !== LAUNCH_SPEC_VERSION) bad(`version must be ${LAUNCH_SPEC_VERSION}`);
  if (!isStr(o.podId) || !NAME.test(o.podId)) bad(`podId must match ${NAME}`);
  if (!isStr(o.secret) || !/^[0-9a-f]{64}$/.test(o.secret)) bad('secret must be 64 hex characters');
  if (!isStr(o.hostname) || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(o.hostname)) bad('hostname is not a host name');
  const r = o.resources as Record<string, unknown>;
  if (!r || !isInt(r.memoryMiB, 64, 1 << 20)) bad('resources.memoryMiB must be a whole number ≥ 64');
  if (!isInt(r.cpus, 1, 255)) bad('resources.cpus must be 1..255');
  if (!Array.isArray(o.images)) bad('images must be a list');
  const images = (o.images as unknown[]).map((im, i) => {
    const d = (im as Record<string, unknown>)?.digest;
    if (!isStr(d) || !/^sha256:[0-9a-f]{64}$/.test(d)) bad(`images[${i}].digest must be sha256:<64 hex>`);
    return { digest: d as string };
  });
  if (images.length > 16) bad('at most 16 images per pod');
  if (!Array.isArray(o.containers)) bad('containers must be a list');
  const containers = (o.containers as unknown[]).map((c, i) => validateContainer(c, i, images.length));
  const names = new Set<string>();
  for (const c of containers) {
    if (names.has(c.name)) bad(`two containers are named ${c.name}`);
    names.add(c.name);
  }
  let vdocker: LaunchSpec['vdocker'];
  if (o.vdocker !== undefined) {
    const vd = o.vdocker as Record<string, unknown>;
    const argv = strings(vd?.argv, 'vdocker.argv');
    if (argv.length === 0 || !argv[0].startsWith('/')) bad('vdocker.argv[0] must be an absolute path');
    const l = vd.listen as Record<string, unknown>;
    if (!l || !isInt(l.port, 1, 65535)) bad('vdocker.listen.port must be 1..65535');
    vdocker = { argv, listen: { address: ipv4(l.address, 'vdocker.listen.address', false), port: l.port as number } };
  }
  if (containers.length === 0 && !vdocker) bad('no containers and no vdocker: nothing to run');
  const network = validateNetwork(o.network);
  let shares: LaunchShare[] | undefined;
  if (o.shares !== undefined) {
    if (!Array.isArray(o.shares) || o.shares.length > 64) bad('shares must be a list of at most 64');
    shares = (o.shares as unknown[]).map((sh, i) => {
      const t = (sh as Record<string, unknown>)?.tag;
      if (!isStr(t) || !NAME.test(t) || t.length > 60) bad(`shares[${i}].tag must match ${NAME} (at most 60 characters)`);
      const o = sh as Record<string, unknown>;
      return { tag: t as string, readonly: !!o.readonly, ...(o.file ? { file: true } : {}) };
    });
  }
  return {
    version: LAUNCH_SPEC_VERSION,
    podId: o.podId as string,
    secret: o.secret as string,
    hostname: o.hostname as string,
    resources: { memoryMiB: r.memoryMiB as number, cpus: r.cpus as number },
    network,
    ...(o.control !== undefined ? { control: validateControl(o.control, network) } : {}),
    ...(o.etc !== undefined ? { etc: validateEtc(o.etc) } : {}),
    images,
    containers,
    ...(vdocker ? { vdocker } : {}),
    ...(shares ? { shares } : {}),
  };
}

/** Parses and validates the JSON text of a launch spec. */
export function parseLaunchSpec(text: string): LaunchSpec {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    bad(`not JSON: ${(err as Error).message}`);
  }
  return validateLaunchSpec(v);
}

/** The address qemu's user networking gives the guest, and what init configures for it. */
export const USER_NETWORK: LaunchNetwork = { mode: 'static', mac: '52:54:00:12:34:56', address: '10.0.2.15/24', gateway: '10.0.2.2', dns: ['10.0.2.3'] };
