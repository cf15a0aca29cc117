// The vm runtime: every container is a pod of its own, a qemu microVM (./pod-vm.ts) whose vdocker
// runs it; every Container call is a vdocker request with the pod secret (./vdocker-client.ts).
// State lives under the root dir: <root>/pods/<id>/ (pod.json, config disk, console log) and
// <root>/disks/ (image and tools disks, cached). krd never learns it talks to a VM.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { withDefaultPath } from '../../image/container-env.ts';
import { isKrError, KrError, withContext } from '../../util/errors.ts';
import { chooseAccel, type Accel } from '../../vm/qemu.ts';
import type { Container, ContainerSpec, ExecSpec, LogEntry, LogOptions, PathStat, ProcessState, PutArchiveOptions, Resources, Runtime, RuntimeProcess, Stats, Stdio, TopResult, ExitStatus } from '../runtime.ts';
import { signalNumber } from '../signals.ts';
import { alive, bootPod, endpointOf, killPod, PodDisks, readPod, type PodLauncher, type PodRecord } from './pod-vm.ts';
import { syncNics } from './pod-nics.ts';
import { etcOf, NETWORK_FILES, podNetworkOf, sharedMounts } from './pod-spec.ts';
import { changesFromJson, type FsChange } from '../archive/upper-layer.ts';
import { entryOf, stdioOver, ttyEntries } from './streams.ts';
import { call, callJson, demux, hijack, passThrough, stream, type Endpoint } from './vdocker-client.ts';
import { exitOf, VmExec } from './vm-exec.ts';
import { checkState, checkStats, checkTop, pathStatOf } from './answers.ts';

/** <pod dir>/container.json */
interface SavedContainer {
  tty: boolean;
  openStdin: boolean;
  /** krd's network namespace of the container, whose veths the pod's NICs follow. */
  netns?: string;
  /** krd's resolv.conf of the container (a network joined later may bring an embedded DNS). */
  resolvConf?: string;
}

/** <pod dir>/execs/<krd's exec id>.json */
interface SavedExec {
  vdockerId: string;
  tty: boolean;
  openStdin: boolean;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const VDOCKER_EXEC_ID = /^[A-Za-z0-9]{1,128}$/;
export interface VmRuntimeOptions {
  accel?: Accel;
  /** Guest RAM when the container sets no memory limit (MiB; node for vdocker needs ≈ 100 of it). */
  defaultMemoryMiB?: number;
  /** How pods come up (default: qemu microVMs; tests: ./host-pod.ts). */
  launcher?: PodLauncher;
}

/** docker's unix-seconds time parameter. */
const secs = (d: Date) => (d.getTime() / 1000).toFixed(3);

export class VmRuntime implements Runtime {
  readonly name = 'vm';
  readonly root: string;
  readonly accel: Accel;
  private readonly disks: PodDisks;
  private readonly memoryMiB: number;
  private readonly launch: PodLauncher;

  constructor(root: string, opts: VmRuntimeOptions = {}) {
    this.root = resolve(root);
    this.accel = opts.accel ?? chooseAccel();
    this.disks = new PodDisks(join(this.root, 'disks'));
    this.memoryMiB = opts.defaultMemoryMiB ?? 384;
    this.launch = opts.launcher ?? bootPod;
  }

  private dirOf(id: string): string {
    if (!ID.test(id)) throw new KrError('invalid', `invalid container id: ${JSON.stringify(id)}`);
    return join(this.root, 'pods', id);
  }

  async create(spec: ContainerSpec): Promise<Container> {
    const dir = this.dirOf(spec.id);
    if (existsSync(dir)) throw new KrError('conflict', `container ${spec.id} already exists`);
    if (!('image' in spec.rootfs)) throw new KrError('invalid', 'the vm runtime runs images, not host directories');
    if (spec.args.length === 0) throw new KrError('invalid', 'no command given');
    const etc = await etcOf(spec.mounts ?? []);
    // krd's network files travel in the launch spec (etcOf); every other bind becomes a share
    const { shares, mounts } = sharedMounts((spec.mounts ?? []).filter((m) => !(m.type === 'bind' && NETWORK_FILES.includes(m.target))));
    const podNetwork = podNetworkOf(spec.network);
    // the pod's container shares the VM's network (eth0 on krd's bridge, or the VM's own); none: lo only
    const network = podNetwork.mode === 'none' ? 'none' : 'host';
    const mem = spec.resources?.memoryBytes ? Math.max(128, Math.ceil(spec.resources.memoryBytes / 2 ** 20)) + 256 : this.memoryMiB;
    const cpus = spec.resources?.nanoCpus ? Math.max(1, Math.ceil(spec.resources.nanoCpus / 1e9)) : 1;
    await mkdir(join(this.root, 'pods'), { recursive: true });
    let pod: PodRecord | null = null;
    try {
      await mkdir(dir);
      const resolvConf = spec.mounts?.find((m) => m.type === 'bind' && m.target === '/etc/resolv.conf');
      const saved: SavedContainer = {
        tty: !!spec.tty,
        openStdin: !!spec.openStdin,
        ...(podNetwork.mode === 'netns' ? { netns: podNetwork.path } : {}),
        ...(resolvConf?.type === 'bind' ? { resolvConf: resolvConf.source } : {}),
      };
      await writeFile(join(dir, 'container.json'), JSON.stringify(saved));
      pod = await this.launch(dir, { id: spec.id, image: spec.rootfs.image, disks: this.disks, accel: this.accel, memoryMiB: mem, cpus, shares, readyTimeoutMs: this.accel === 'kvm' ? 60_000 : 300_000, network: podNetwork, hostname: spec.hostname, etc });
      const body = {
        id: spec.id,
        image: 0,
        args: spec.args,
        env: withDefaultPath(spec.env ?? []),
        cwd: spec.cwd,
        user: spec.user,
        tty: !!spec.tty,
        openStdin: !!spec.openStdin,
        // the runtime's stdin ends when the caller ends it (krd decides docker's StdinOnce itself)
        stdinOnce: !!spec.openStdin,
        hostname: spec.hostname,
        init: !!spec.init,
        readonlyRootfs: !!spec.readonlyRootfs,
        capAdd: spec.capAdd,
        capDrop: spec.capDrop,
        network,
        resources: spec.resources,
        sysctls: spec.sysctls,
        mounts,
      };
      await call(endpointOf(pod), 'POST', '/kraud/containers', { body: Buffer.from(JSON.stringify(body)), deadlineMs: 60_000 });
      const c = new VmContainer(spec.id, dir, pod, saved);
      // created on several networks: the others than the first are hot-plugged NICs
      await c.networksChanged();
      return c;
    } catch (err) {
      if (pod) killPod(pod);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw withContext(err, `create ${spec.id}`);
    }
  }

  async reattach(id: string): Promise<Container> {
    const dir = this.dirOf(id);
    const pod = await readPod(dir).catch(() => null);
    if (!pod) throw new KrError('not-found', `no such container: ${id}`);
    let io: SavedContainer = { tty: false, openStdin: false };
    try {
      io = JSON.parse(readFileSync(join(dir, 'container.json'), 'utf8')) as SavedContainer;
    } catch {
      // written before pod.json; absent only if someone removed it
    }
    return new VmContainer(id, dir, pod, io);
  }

  async list(): Promise<string[]> {
    return readdir(join(this.root, 'pods')).catch(() => []);
  }
}

class VmContainer implements Container {
  readonly id: string;
  private readonly dir: string;
  private readonly pod: PodRecord;
  private readonly ep: Endpoint;
  private readonly tty: boolean;
  private readonly openStdin: boolean;
  private readonly path: string;
  /** The exit, once seen (until a recreate). */
  private exited: ExitStatus | null = null;

  private readonly netns: string | undefined;
  private readonly resolvConf: string | undefined;

  constructor(id: string, dir: string, pod: PodRecord, io: SavedContainer) {
    this.id = id;
    this.dir = dir;
    this.pod = pod;
    this.ep = endpointOf(pod);
    this.tty = io.tty;
    this.openStdin = io.openStdin;
    this.netns = typeof io.netns === 'string' ? io.netns : undefined;
    this.resolvConf = typeof io.resolvConf === 'string' ? io.resolvConf : undefined;
    this.path = `/containers/${id}`;
  }

  /** The namespace's veths changed (docker network connect/disconnect): the guest's NICs follow (./pod-nics.ts). */
  async networksChanged(): Promise<void> {
    if (this.netns) await syncNics({ dir: this.dir, netns: this.netns, ep: this.ep, alive: () => this.vmAlive(), resolvConf: this.resolvConf });
  }

  /** The pod's qemu still runs (its pid checked against the command line naming this pod's disk). */
  private vmAlive(): boolean {
    if (!alive(this.pod.pid)) return false;
    try {
      return readFileSync(`/proc/${this.pod.pid}/cmdline`, 'utf8').includes(this.dir);
    } catch {
      return false;
    }
  }

  async attach(): Promise<Stdio> {
    const q = `stream=1&stdout=1&stderr=1${this.openStdin ? '&stdin=1' : ''}`;
    const { socket, head } = await hijack(this.ep, `${this.path}/attach?${q}`);
    return stdioOver(socket, head, { tty: this.tty, stdin: this.openStdin });
  }

  async start(): Promise<void> {
    const st = await this.state();
    if (st.status === 'exited') throw new KrError('conflict', `${this.id} has already run; recreate it first`);
    if (st.status === 'running') return;
    await call(this.ep, 'POST', `${this.path}/start`, { deadlineMs: 60_000 });
  }

  /** A new process for an exited container, held before start (the guest's ns runtime recreates it). */
  async recreate(): Promise<void> {
    if (!this.vmAlive()) throw new KrError('unavailable', `container ${this.id}: its VM is gone`);
    await call(this.ep, 'POST', `/kraud${this.path}/recreate`, { deadlineMs: 60_000 });
    this.exited = null;
  }

  async pause(): Promise<void> {
    await call(this.ep, 'POST', `${this.path}/pause`);
  }

  async resume(): Promise<void> {
    await call(this.ep, 'POST', `${this.path}/unpause`);
  }

  /** In the guest's cgroups (the pod's memory stays what it booted with). */
  async update(r: Resources): Promise<void> {
    const body = { Memory: r.memoryBytes ?? 0, NanoCpus: r.nanoCpus ?? 0, CpuShares: r.cpuShares ?? 0, ...(r.pidsLimit ? { PidsLimit: r.pidsLimit } : {}) };
    await call(this.ep, 'POST', `${this.path}/update`, { body: Buffer.from(JSON.stringify(body)) });
  }

  async kill(signal: string | number): Promise<void> {
    await call(this.ep, 'POST', `${this.path}/kill?signal=${signalNumber(signal)}`);
  }

  async wait(): Promise<ExitStatus> {
    if (this.exited) return this.exited;
    for (;;) {
      const st = await this.state().catch((err: unknown) => (this.vmAlive() ? Promise.reject(err) : null));
      if (!st) continue;
      if (st.status === 'exited') return (this.exited = st.exit!);
      if (st.status === 'created') {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      // blocks until the exit (no deadline); a dropped connection is retried
      await call(this.ep, 'POST', `${this.path}/wait?condition=not-running`, { deadlineMs: 0 }).catch(() => new Promise((r) => setTimeout(r, 200)));
    }
  }

  async resize(rows: number, cols: number): Promise<void> {
    await call(this.ep, 'POST', `${this.path}/resize?h=${rows}&w=${cols}`);
  }

  async state(): Promise<ProcessState> {
    if (!this.vmAlive()) return { status: 'exited', exit: exitOf(255, new Date()) };
    return callJson(this.ep, 'GET', `/kraud${this.path}/state`, checkState);
  }

  async exec(id: string, spec: ExecSpec): Promise<RuntimeProcess> {
    const file = this.execFile(id);
    const body = { Cmd: spec.args, Env: spec.env ?? [], WorkingDir: spec.cwd ?? '', User: spec.user ?? '', Tty: !!spec.tty, AttachStdin: !!spec.openStdin, AttachStdout: true, AttachStderr: true };
    const made = await callJson(this.ep, 'POST', `${this.path}/exec`, (v) => {
      const i = (v as { Id?: unknown })?.Id;
      if (typeof i !== 'string' || !VDOCKER_EXEC_ID.test(i)) throw new Error('Id');
      return i;
    }, { body: Buffer.from(JSON.stringify(body)) });
    const saved: SavedExec = { vdockerId: made, tty: !!spec.tty, openStdin: !!spec.openStdin };
    // vdocker keeps its execs as long as the pod runs; krd keeps which of them is which, so a
    // restarted krd finds an exec again by its own id (execProcess)
    await mkdir(join(this.dir, 'execs'), { recursive: true });
    await writeFile(file, JSON.stringify(saved));
    return new VmExec(id, this.ep, made, saved, () => rm(file, { force: true }));
  }

  private execFile(id: string): string {
    if (!ID.test(id)) throw new KrError('invalid', `invalid exec id: ${JSON.stringify(id)}`);
    return join(this.dir, 'execs', `${id}.json`);
  }

  /** An exec found again by krd's id (after a krd restart): vdocker still knows it by its own. */
  async execProcess(id: string): Promise<RuntimeProcess> {
    const file = this.execFile(id);
    const text = await readFile(file, 'utf8').catch(() => null);
    if (text === null) throw new KrError('not-found', `no such exec: ${id}`);
    // written by krd itself; checked anyway, since the id goes into vdocker's URLs
    const v = JSON.parse(text) as SavedExec;
    if (typeof v?.vdockerId !== 'string' || !VDOCKER_EXEC_ID.test(v.vdockerId)) throw new KrError('not-found', `no such exec: ${id} (its record is damaged)`);
    return new VmExec(id, this.ep, v.vdockerId, { tty: !!v.tty, openStdin: !!v.openStdin }, () => rm(file, { force: true }));
  }

  async *logs(opts: LogOptions = {}): AsyncGenerator<LogEntry> {
    const q = new URLSearchParams({ stdout: '1', stderr: '1', timestamps: '1' });
    if (opts.follow) q.set('follow', '1');
    if (opts.tail !== undefined) q.set('tail', String(opts.tail));
    if (opts.since) q.set('since', secs(opts.since));
    if (opts.until) q.set('until', secs(opts.until));
    const { res, abort } = await stream(this.ep, 'GET', `${this.path}/logs?${q}`);
    opts.signal?.addEventListener('abort', abort);
    const queue: LogEntry[] = [];
    let done = false;
    let wake: (() => void) | null = null;
    const push = (e: LogEntry | null) => {
      if (e && (!opts.since || e.time >= opts.since)) queue.push(e);
      wake?.();
    };
    if (this.tty) {
      let text: Buffer = Buffer.alloc(0);
      res.on('data', (d: Buffer) => {
        text = Buffer.concat([text, d]);
        const cut = text.lastIndexOf(0x0a) + 1;
        for (const e of ttyEntries(text.subarray(0, cut))) push(e);
        text = text.subarray(cut);
        if (text.length > 8 << 20) abort(); // a line that never ends: the guest is misbehaving
      });
      const finish = () => ((done = true), wake?.());
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    } else {
      demux(res, (n, data) => push(entryOf(n === 1 ? 'stdout' : 'stderr', data)), () => ((done = true), wake?.()));
    }
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (done) return;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      opts.signal?.removeEventListener('abort', abort);
      abort();
    }
  }

  async stats(): Promise<Stats> {
    return callJson(this.ep, 'GET', `${this.path}/stats?stream=0&one-shot=1`, checkStats);
  }

  async top(psArgs: string[]): Promise<TopResult> {
    const q = psArgs.length ? `?ps_args=${encodeURIComponent(psArgs.join(' '))}` : '';
    return callJson(this.ep, 'GET', `${this.path}/top${q}`, checkTop);
  }

  async statPath(path: string): Promise<PathStat> {
    const a = await call(this.ep, 'HEAD', `${this.path}/archive?path=${encodeURIComponent(path)}`).catch((err: unknown) => {
      // a HEAD answer has no body to carry vdocker's message
      throw isKrError(err, 'not-found') ? new KrError('not-found', `Could not find the file ${path} in container ${this.id}`) : err;
    });
    return pathStatOf(this.ep.label, a.headers['x-docker-container-path-stat']);
  }

  changes(): Promise<FsChange[]> {
    return callJson(this.ep, 'GET', `${this.path}/changes`, changesFromJson);
  }

  /** The guest's tar is read only as an untrusted image layer is: stored as a blob, flattened, or unpacked by the hardened extractor. */
  async layer(): Promise<Readable> {
    const { res, abort } = await stream(this.ep, 'GET', `/kraud${this.path}/layer`);
    return passThrough(res, abort);
  }

  async getArchive(path: string): Promise<{ stat: PathStat; tar: Readable }> {
    const { res, abort } = await stream(this.ep, 'GET', `${this.path}/archive?path=${encodeURIComponent(path)}`);
    try {
      return { stat: pathStatOf(this.ep.label, res.headers['x-docker-container-path-stat']), tar: passThrough(res, abort) };
    } catch (err) {
      abort();
      throw err;
    }
  }

  async putArchive(path: string, tar: AsyncIterable<Buffer>, opts: PutArchiveOptions = {}): Promise<void> {
    const q = new URLSearchParams({ path });
    if (opts.noOverwriteDirNonDir) q.set('noOverwriteDirNonDir', '1');
    // vdocker applies the container's USER itself (its record has krd's), as krd does with ownerUser
    if (opts.ownerUser) q.set('copyUIDGID', '1');
    const { Readable } = await import('node:stream');
    await call(this.ep, 'PUT', `${this.path}/archive?${q}`, { body: Readable.from(tar), headers: { 'Content-Type': 'application/x-tar' }, deadlineMs: 0 });
  }

  /** The pod is the container: deleting it stops the VM and removes its directory. */
  async delete(opts: { force?: boolean } = {}): Promise<void> {
    if (!opts.force && this.vmAlive()) {
      const st = await this.state().catch(() => null);
      if (st?.status === 'running') throw new KrError('conflict', `container ${this.id} is running: stop it first or force`);
    }
    // the container first (its supervisor and cgroups in the guest), then the pod itself
    if (this.vmAlive()) await call(this.ep, 'DELETE', `${this.path}?force=1`, { deadlineMs: 30_000 }).catch(() => undefined);
    killPod(this.pod);
    for (let i = 0; i < 100 && alive(this.pod.pid); i++) await new Promise((r) => setTimeout(r, 20));
    await rm(this.dir, { recursive: true, force: true });
  }
}
