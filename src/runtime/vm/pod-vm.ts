// One pod VM for krd's vm runtime, booted with cradle's pieces (launch spec, config disk, qemu
// command line, guest assets): no container in the spec, vdocker on the tools disk, and the
// container created through vdocker once it answers — so it is held before start like any
// Runtime.create, and krd can attach first.
//
// Host ↔ guest transport: qemu user-mode networking with one hostfwd, 127.0.0.1:<free port> →
// guest port 1 (vdocker). It needs no host networking (nothing other processes on the host can
// reach except through loopback, where the pod secret still guards it) and works the same under
// TCG and KVM. On krd's networks (bridge, user networks) and with --network none it is a second
// NIC of its own, kraud0, with restrict=on: the guest gets nothing out of it but that one forward.
// The pod's own network is then eth0: a tap in the container's network namespace that krd made,
// wired to its veth (src/net/tap-redirect.ts), opened there by native/krd-tapfd.c while qemu itself
// stays in krd's namespace (where the forward listens). --network host keeps the VM's own slirp
// network as its only NIC (outbound through qemu, no address on a bridge). Networks joined later
// are NICs hot-plugged into the running VM (./pod-nics.ts): such pods boot with PCIe slots for them.
//
// qemu is started in its own session, so pods outlive a krd restart; pod.json keeps what a new krd
// needs to reach the pod again (port, secret, pid).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Image } from '../../image/types.ts';
import { KrError, withContext } from '../../util/errors.ts';
import { guestAssets } from '../../vm/assets.ts';
import { configDisk } from '../../vm/config-disk.ts';
import { USER_NETWORK, validateLaunchSpec, type LaunchEtc, type LaunchNetwork, type LaunchSpec } from '../../vm/launch-spec.ts';
import { watchForStall } from '../../vm/boot-watch.ts';
import { qemuArgs, type Accel, type QemuOptions } from '../../vm/qemu.ts';
import { readLink, redirectToTap, removeTap } from '../../net/tap-redirect.ts';
import { startShares, VIRTIOFSD, type Share } from '../../vm/virtiofs.ts';
import { RootfsCache } from '../ns/rootfs-cache.ts';
import { call, type Endpoint } from './vdocker-client.ts';
import { toolsDisk, vdockerArgv } from './tools-disk.ts';
import { NIC_SLOTS, QMP_SOCKET } from './pod-nics.ts';

const run = promisify(execFile);
const TAPFD = fileURLToPath(new URL('../../../build/krd-tapfd', import.meta.url));
/** The control NIC's subnet: link-local, so no krd network (nor docker's pools) overlaps it. */
const CONTROL = { net: '169.254.253.0/24', guest: '169.254.253.15', mac: '52:54:00:6b:72:64' };
/** The container's veth in its namespace, and the tap beside it. */
const VETH = 'eth0';
const TAP = 'tap0';

/** What pod.json keeps. */
export interface PodRecord {
  id: string;
  secret: string;
  port: number;
  pid: number;
  accel: Accel;
  /** Deadline of a plain vdocker call (tests of a misbehaving guest shorten it). */
  deadlineMs?: number;
  /** The pod's virtiofsd processes (they end with qemu; killed with it anyway). */
  helpers?: number[];
}

export function endpointOf(p: PodRecord): Endpoint {
  return { host: '127.0.0.1', port: p.port, secret: p.secret, label: `pod ${p.id.slice(0, 12)}`, deadlineMs: p.deadlineMs };
}

/** A free loopback port (closed again; qemu binds it a moment later — retried if taken meanwhile). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class PodDisks {
  private readonly dir: string;
  private readonly rootfs_: RootfsCache;
  private readonly pending = new Map<string, Promise<string>>();
  private tools: Promise<string> | null = null;

  constructor(dir: string) {
    this.dir = dir;
    this.rootfs_ = new RootfsCache(join(dir, 'rootfs'));
  }

  /** The image as an erofs disk (from the flattened rootfs the ns runtime caches too), once per digest. */
  image(image: Image): Promise<string> {
    const hex = image.manifestDigest.replace(/^sha256:/, '');
    const out = join(this.dir, `${hex}.erofs`);
    if (existsSync(out)) return Promise.resolve(out);
    let p = this.pending.get(hex);
    if (!p) {
      p = (async () => {
        const tree = await this.rootfs_.get(image);
        const tmp = `${out}.${randomBytes(6).toString('hex')}`;
        try {
          await run('mkfs.erofs', ['--quiet', '-T0', '-U', '00000000-0000-0000-0000-000000000000', tmp, tree], { maxBuffer: 1 << 20 });
          await rename(tmp, out);
        } catch (err) {
          await rm(tmp, { force: true });
          const e = err as { stderr?: string; code?: string };
          throw new KrError(e.code === 'ENOENT' ? 'unavailable' : 'io', `image disk: ${e.code === 'ENOENT' ? 'mkfs.erofs is missing (erofs-utils)' : (e.stderr ?? String(err)).trim()}`);
        }
        return out;
      })().finally(() => this.pending.delete(hex));
      this.pending.set(hex, p);
    }
    return p;
  }

  /** The image's flattened rootfs as a directory (a host pod's image "disk"). */
  rootfs(image: Image): Promise<string> {
    return this.rootfs_.get(image);
  }

  /** vdocker's disk; computed once per process (the code and node do not change under it). */
  toolsDisk(): Promise<string> {
    this.tools ??= toolsDisk(this.dir).catch((err) => {
      this.tools = null;
      throw err;
    });
    return this.tools;
  }
}

export interface BootOptions {
  id: string;
  image: Image;
  disks: PodDisks;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  /** How long vdocker may take to answer (the guest boots and node starts). */
  readyTimeoutMs: number;
  /**
   * 'netns': krd's networking, the container's namespace (its eth0 becomes the guest's); 'none':
   * lo only; 'user': the VM's own network (qemu user networking, outbound only).
   */
  network: PodNetwork;
  /** The guest's host name (default: the first 12 characters of the id). */
  hostname?: string;
  /** /etc/hosts and /etc/resolv.conf for the pod's containers, as krd wrote them. */
  etc?: LaunchEtc;
  /** Host directories shared into the VM (virtiofs), mounted in the guest at /run/cradle/shares/<tag>. */
  shares?: Share[];
}

export type PodNetwork = { mode: 'none' } | { mode: 'user' } | { mode: 'netns'; path: string };

/** How a pod comes up: a qemu microVM (bootPod), or vdocker as a host process (./host-pod.ts, tests). */
export type PodLauncher = (dir: string, o: BootOptions) => Promise<PodRecord>;

/** The launch spec of a krd pod: one image, no containers yet (krd creates them through vdocker), a fresh secret. */
export function podLaunchSpec(o: BootOptions, vdockerArgv: string[], listenAddress: string, net: { network: LaunchNetwork; control?: boolean } = { network: USER_NETWORK }): LaunchSpec {
  const hostname = o.hostname && /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(o.hostname) ? o.hostname : o.id.slice(0, 12);
  return validateLaunchSpec({
    version: 1,
    podId: o.id,
    secret: randomBytes(32).toString('hex'),
    hostname,
    resources: { memoryMiB: o.memoryMiB, cpus: o.cpus },
    network: net.network,
    ...(net.control ? { control: { mac: CONTROL.mac, address: `${CONTROL.guest}/24` } } : {}),
    ...(o.etc ? { etc: o.etc } : {}),
    images: [{ digest: o.image.manifestDigest }],
    containers: [],
    vdocker: { argv: vdockerArgv, listen: { address: listenAddress, port: 1 } },
    shares: (o.shares ?? []).map(({ tag, readonly, file }) => ({ tag, readonly, ...(file ? { file } : {}) })),
  });
}

interface PodNics {
  network: LaunchNetwork;
  /** kraud0, the restricted control NIC, carries vdocker's forward (else the one user-mode NIC does). */
  control: boolean;
  qemu: QemuOptions['network'];
  /** What qemu is started through (krd-tapfd for a tap in the container's namespace). */
  wrap: string[];
  /** Networks joined later get hot-plugged NICs (./pod-nics.ts). */
  hotplug: boolean;
}

/** The guest's NICs; for krd's networks, the tap set up in the container's namespace. */
async function podNics(o: BootOptions): Promise<PodNics> {
  const user = USER_NETWORK.mode === 'static' ? USER_NETWORK.mac : '';
  if (o.network.mode === 'user') return { network: USER_NETWORK, control: false, qemu: { mode: 'user', mac: user, forwards: [] }, wrap: [], hotplug: false };
  if (o.network.mode === 'none') return { network: { mode: 'none' }, control: true, qemu: { mode: 'none' }, wrap: [], hotplug: false };
  const path = o.network.path;
  const link = await readLink(path, VETH);
  await redirectToTap(path, VETH, TAP, link.mtu);
  return {
    network: { mode: 'static', mac: link.mac, address: link.address, ...(link.gateway ? { gateway: link.gateway } : {}), dns: [] },
    control: true,
    qemu: { mode: 'tap', mac: link.mac, fd: 3 },
    wrap: [TAPFD, path, TAP],
    hotplug: true,
  };
}

/** Boots the pod in `dir` (created here) and waits until its vdocker answers. */
export async function bootPod(dir: string, o: BootOptions): Promise<PodRecord> {
  const [imageDisk, tools] = await Promise.all([o.disks.image(o.image), o.disks.toolsDisk()]);
  const nics = await podNics(o);
  try {
    return await bootWith(dir, o, nics, [imageDisk, tools]);
  } catch (err) {
    if (o.network.mode === 'netns') await removeTap(o.network.path, VETH, TAP);
    throw err;
  }
}

async function bootWith(dir: string, o: BootOptions, nics: PodNics, [imageDisk, tools]: string[]): Promise<PodRecord> {
  const assets = guestAssets();
  const listen = nics.control ? CONTROL.guest : USER_NETWORK.mode === 'static' ? USER_NETWORK.address.split('/')[0] : '';
  const spec = podLaunchSpec(o, vdockerArgv(), listen, nics);
  const secret = spec.secret;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.img'), configDisk(spec), { mode: 0o600 });
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const forwards = [{ host: port, guest: 1, proto: 'tcp' as const }];
    // in the pod dir, in their own sessions: like qemu, they outlive a krd restart
    const shares = await startShares(dir, o.shares ?? [], { detached: true });
    const args = qemuArgs({
      accel: o.accel,
      kernel: assets.kernel,
      initrd: assets.initramfs,
      memoryMiB: o.memoryMiB,
      cpus: o.cpus,
      disks: [
        { file: join(dir, 'config.img'), serial: 'kraud-config', readonly: true },
        { file: imageDisk, serial: 'kraud-img0', readonly: true },
        { file: tools, serial: 'kraud-tools', readonly: true },
      ],
      consoleFile: join(dir, 'console.log'),
      ioSocket: 'null',
      shares: shares.map(({ tag, socket }) => ({ tag, socket })),
      network: nics.qemu.mode === 'user' ? { ...nics.qemu, forwards } : nics.qemu,
      ...(nics.control ? { control: { ...CONTROL, forwards } } : {}),
      ...(nics.hotplug ? { hotplug: { qmp: QMP_SOCKET, slots: NIC_SLOTS } } : {}),
      // KRAUD_VM_DEBUG=1: the guest kernel's messages too, in the pod's console.log
      quiet: !process.env.KRAUD_VM_DEBUG,
    });
    // The kraud.io port is standalone cradle's output channel; under krd, output, exits and logs
    // come through vdocker, so the port is a sink: a file chardev on /dev/null. Not qemu's `null` chardev: that one
    // leaves the port unconnected, and the init's first write to it blocks the guest forever.
    const io = args.findIndex((a) => a.startsWith('socket,id=io,'));
    if (io >= 0) args[io] = 'file,id=io,path=/dev/null';
    const errFile = join(dir, 'qemu.log');
    const errFd = openSync(errFile, 'w');
    // run in the pod dir: the virtiofs sockets are named relative to it (unix socket paths are short)
    const argv = [...nics.wrap, 'qemu-system-x86_64', ...args];
    const child = spawn(argv[0], argv.slice(1), { cwd: dir, detached: true, stdio: ['ignore', 'ignore', errFd] });
    closeSync(errFd);
    const helpers = shares.map((sh) => sh.daemon.pid!).filter(Boolean);
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (err) => reject(new KrError('unavailable', `${argv[0]}: ${err.message}`)));
    }).catch((err) => {
      for (const h of helpers) killHelper(h);
      throw err;
    });
    child.unref();
    const pod: PodRecord = { id: o.id, secret, port, pid, accel: o.accel, ...(helpers.length ? { helpers } : {}) };
    await writeFile(join(dir, 'pod.json.tmp'), JSON.stringify(pod), { mode: 0o600 });
    await rename(join(dir, 'pod.json.tmp'), join(dir, 'pod.json'));
    const ready = await waitReady(pod, o.readyTimeoutMs, { stalls: true });
    if (ready === true) {
      // the guest has no wall clock of its own: log time stamps, exits and `since` need the host's
      // (off by the request's one-way trip, a few ms; never ahead of the host)
      await call(endpointOf(pod), 'POST', '/kraud/clock', { body: Buffer.from(JSON.stringify({ unixMs: Date.now() })) }).catch((err: unknown) => {
        killPod(pod);
        throw withContext(err, `pod ${o.id.slice(0, 12)}: setting its clock`);
      });
      return pod;
    }
    if (ready === 'stalled' && attempt < 2) {
      // nothing ran in it yet: boot it again, once the old qemu has let go of its devices (a tap)
      killPod(pod);
      for (let i = 0; i < 100 && alive(pod.pid); i++) await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const log = (await readFile(errFile, 'utf8').catch(() => '')).trim();
    killPod(pod);
    throw new KrError('unavailable', `pod ${o.id.slice(0, 12)} (accel ${o.accel}): ${ready === 'exited' ? `qemu exited: ${log.split('\n').pop() || 'no message'}` : ready === 'stalled' ? 'the guest stalled in its boot three times (qemu idle for 30 s before vdocker answered)' : `vdocker did not answer within ${o.readyTimeoutMs / 1000} s`} (see ${dir}/console.log)`);
  }
}

/**
 * true once vdocker answers /_ping; 'exited' if its process is gone; 'timeout'; with `stalls`,
 * 'stalled' when qemu went idle before that (a boot that stalls, src/vm/boot-watch.ts).
 */
export async function waitReady(pod: PodRecord, timeoutMs: number, o: { stalls?: boolean } = {}): Promise<true | 'exited' | 'timeout' | 'stalled'> {
  const ep = endpointOf(pod);
  const deadline = Date.now() + timeoutMs;
  let stalled = false;
  const stopWatch = o.stalls ? watchForStall(pod.pid, () => (stalled = true)) : () => {};
  try {
    while (Date.now() < deadline) {
      if (stalled) return 'stalled';
      if (!alive(pod.pid)) return 'exited';
      const ok = await call(ep, 'GET', '/_ping', { deadlineMs: 2000 }).then(() => true, () => false);
      if (ok) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return 'timeout';
  } finally {
    stopWatch();
  }
}

export function killPod(pod: PodRecord): void {
  try {
    process.kill(pod.pid, 'SIGKILL');
  } catch {
    // gone already
  }
  for (const h of pod.helpers ?? []) killHelper(h);
}

/** A virtiofsd of a pod, if that pid still is one (pids are reused after a krd restart). */
function killHelper(pid: number): void {
  try {
    if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] !== VIRTIOFSD) return;
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

export async function readPod(dir: string): Promise<PodRecord | null> {
  const text = await readFile(join(dir, 'pod.json'), 'utf8').catch(() => null);
  if (text === null) return null;
  // written by krd itself, but checked: a corrupt file must not send requests anywhere else
  const v = JSON.parse(text) as PodRecord;
  if (!v || typeof v.secret !== 'string' || !Number.isInteger(v.port) || v.port <= 0 || v.port > 65535 || !Number.isInteger(v.pid) || v.pid <= 1) return null;
  if (v.helpers !== undefined && !(Array.isArray(v.helpers) && v.helpers.every((h) => Number.isInteger(h) && h > 1))) return null;
  return v;
}
