// The namespace runtime: each container is a krd-shim (native/krd-shim.c) that makes new
// mount/pid/ipc/uts/net namespaces, mounts an overlay of the image's cached flattened rootfs and
// a per-container upper dir, joins the container's cgroups, and pivot_roots. All state lives
// under the root dir the caller passes: <root>/containers/<id>/ and <root>/rootfs/<digest>/.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { resolveUser } from '../../image/users.ts';
import { KrError, withContext } from '../../util/errors.ts';
import { readLog } from '../log-file.ts';
import { readNetDev } from '../net-dev.ts';
import type { Container, ContainerSpec, ExecSpec, LogEntry, LogOptions, PathStat, PutArchiveOptions, Resources, Runtime, RuntimeProcess, Stats, TopResult } from '../runtime.ts';
import { capabilityMask } from './capabilities.ts';
import { adoptCgroups, applyLimits, cgroupDirs, cgroupPids, createCgroups, freeze, readStats, removeCgroups } from './cgroups.ts';
import { psTop } from '../top.ts';
import { populateVolume } from './populate-volume.ts';
import { RootfsCache } from './rootfs-cache.ts';
import { ShimProcess } from './shim-process.ts';
import { ShimPool } from './shim-pool.ts';
import { spawnShim } from './spawn-shim.ts';
import { RootViews, type RootView } from './root-view.ts';
import { archiveInRoot, extractInRoot, statInRoot } from '../archive/in-root.ts';
import { layerTar, scanUpper, type FsChange } from '../archive/upper-layer.ts';
import { withDefaultPath } from '../../image/container-env.ts';

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const INIT_CANDIDATES = ['/usr/bin/tini-static', '/usr/bin/tini'];

/** What is kept on disk per container, so a new Runtime object can reattach. */
interface SavedState {
  id: string;
  lower: string;
  tty: boolean;
  openStdin: boolean;
  cgroups: string[];
  caps: string;
  /** The shim's mount arguments (overlay, binds, tmpfs, read-only), for a view while stopped. */
  mountArgs?: string[];
  /** The supervisor's arguments and environment, to run the main process again (recreate). */
  shim?: { args: string[]; env: string[] };
}

export class NsRuntime implements Runtime {
  readonly name = 'ns';
  readonly root: string;
  readonly cache: RootfsCache;
  /** Cgroup parent name, unique per root dir so several runtimes can share a host. */
  readonly cgroupGroup: string;
  /** Views of stopped containers' filesystems (docker cp), shared per container. */
  readonly views = new RootViews();
  private readonly pool: ShimPool;

  /**
   * Inside a pod VM, where a container's "host" network is the pod's own (vdocker): stats report
   * its interfaces, as they are the container's. On a real host they are not, as with dockerd.
   */
  readonly podNetwork: boolean;

  constructor(root: string, opts: { podNetwork?: boolean } = {}) {
    this.root = resolve(root);
    this.podNetwork = !!opts.podNetwork;
    this.cache = new RootfsCache(join(this.root, 'rootfs'));
    this.cgroupGroup = `kraud-${createHash('sha256').update(this.root).digest('hex').slice(0, 12)}`;
    this.pool = new ShimPool(this.cgroupGroup);
  }

  /** Ends the pooled shims (containers go on); waits for state dirs being removed. */
  async close(): Promise<void> {
    await Promise.all([this.pool.close(), ...this.removing]);
  }

  private readonly removing = new Set<Promise<void>>();

  /**
   * Takes a deleted container's state dir away at once (a rename) and removes it behind: the
   * removal of its files took milliseconds on the path of `docker run --rm`. Dirs a killed krd
   * left that way go with the next one.
   */
  async discard(dir: string): Promise<void> {
    const parent = join(this.root, 'containers');
    const trash = join(parent, `.gone-${randomBytes(8).toString('hex')}`);
    const first = this.removing.size === 0;
    await rename(dir, trash).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    const names = first ? (await readdir(parent).catch(() => [])).filter((n) => n.startsWith('.gone-')) : [basename(trash)];
    for (const name of names) {
      const p = rm(join(parent, name), { recursive: true, force: true })
        .catch(() => undefined)
        .finally(() => this.removing.delete(p));
      this.removing.add(p);
    }
  }

  private dirOf(id: string): string {
    if (!ID.test(id)) throw new KrError('invalid', `invalid container id: ${JSON.stringify(id)}`);
    return join(this.root, 'containers', id);
  }

  async create(spec: ContainerSpec): Promise<Container> {
    const dir = this.dirOf(spec.id);
    if (existsSync(dir)) throw new KrError('conflict', `container ${spec.id} already exists`);
    if (spec.args.length === 0) throw new KrError('invalid', 'no command given');
    await mkdir(join(this.root, 'containers'), { recursive: true });
    await mkdir(dir);
    let cgroups = cgroupDirs(this.cgroupGroup, spec.id);
    try {
      const lower = 'image' in spec.rootfs ? await this.cache.get(spec.rootfs.image) : resolve(spec.rootfs.dir);
      for (const d of ['upper', 'work', 'rootfs']) await mkdir(join(dir, d));
      const caps = capabilityMask(spec.capAdd, spec.capDrop).toString(16);
      const mountArgs = ['--lower', lower, '--upper', join(dir, 'upper'), '--work', join(dir, 'work')];
      if (spec.readonlyRootfs) mountArgs.push('--readonly');
      for (const m of spec.mounts ?? []) {
        if (m.type === 'bind') {
          if (m.populate) await populateVolume(lower, m.target, m.source);
          mountArgs.push('--bind', `${resolve(m.source)}:${m.target}${m.readonly ? ':ro' : ''}`);
        } else mountArgs.push('--tmpfs', m.options?.length ? `${m.target}:${m.options.join(',')}` : m.target);
      }
      const args = [...mountArgs];
      if (spec.hostname) args.push('--hostname', spec.hostname);
      for (const [k, v] of Object.entries(spec.sysctls ?? {})) args.push('--sysctl', `${k}=${v}`);
      const net = spec.network ?? 'none';
      args.push('--net', net === 'none' ? 'new' : net === 'host' ? 'host' : net.netnsPath);
      if (spec.init) {
        // KRAUD_INIT: where another tini lives (a pod VM's tools disk)
        const init = [process.env.KRAUD_INIT ?? '', ...INIT_CANDIDATES].find((p) => p && existsSync(p));
        if (!init) throw new KrError('unavailable', 'init requested but tini is not installed');
        args.push('--init', init);
      }
      // a pooled shim's child already waits in its cgroups: they become the container's
      const slot = this.pool.take();
      if (slot) cgroups = await adoptCgroups(slot.cgroups, spec.id, spec.resources);
      else cgroups = await createCgroups(this.cgroupGroup, spec.id, spec.resources);
      const saved: SavedState = { id: spec.id, lower, tty: !!spec.tty, openStdin: !!spec.openStdin, cgroups, caps, mountArgs };
      saved.shim = { args: [dir, ...this.processArgs(lower, spec, saved), ...args, '--', ...spec.args], env: withDefaultPath(spec.env ?? []) };
      await writeFile(join(dir, 'state.json'), JSON.stringify(saved));
      this.known.set(spec.id, saved);
      await (slot ? claim(slot.slot, saved.shim) : spawnShim(saved.shim.args, saved.shim.env));
      return new NsContainer(this, dir, saved);
    } catch (err) {
      await removeCgroups(cgroups).catch(() => undefined);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw withContext(err, `create ${spec.id}`);
    }
  }

  /** Options shared by a container's process and its execs: identity, caps, stdio, cgroups. */
  processArgs(root: string, spec: { user?: string; cwd?: string; tty?: boolean; openStdin?: boolean }, saved: SavedState): string[] {
    const user = resolveUser(root, spec.user);
    const args = ['--uid', String(user.uid), '--gid', String(user.gid), '--groups', user.groups.join(','), '--caps', saved.caps, '--cwd', spec.cwd || '/'];
    if (spec.tty) args.push('--tty');
    if (spec.openStdin) args.push('--stdin');
    for (const c of saved.cgroups) args.push('--cgroup', c);
    return args;
  }

  /**
   * Saved states read or written by this object: krd reattaches on every request about a
   * container (attach, start, wait, delete…), and each read of state.json cost three trips
   * through the thread pool. A dir that is gone (deleted, by this object or another) is not used.
   */
  private readonly known = new Map<string, SavedState>();

  async reattach(id: string): Promise<Container> {
    const dir = this.dirOf(id);
    const cached = this.known.get(id);
    if (cached && existsSync(dir)) return new NsContainer(this, dir, cached);
    const text = await readFile(join(dir, 'state.json'), 'utf8').catch(() => null);
    if (text === null) {
      this.known.delete(id);
      throw new KrError('not-found', `no such container: ${id}`);
    }
    const saved = JSON.parse(text) as SavedState;
    this.known.set(id, saved);
    return new NsContainer(this, dir, saved);
  }

  forget(id: string): void {
    this.known.delete(id);
  }

  async list(): Promise<string[]> {
    return (await readdir(join(this.root, 'containers')).catch(() => [])).filter((n) => !n.startsWith('.'));
  }
}

/**
 * The pooled shim takes the container (its --cgroup options are ignored: its child is in them).
 * A shim that ended meanwhile, or lost its child, is passed over for a plain start, which joins
 * the same (now empty) groups.
 */
async function claim(slot: string, shim: { args: string[]; env: string[] }): Promise<number> {
  return spawnShim(shim.args, shim.env, slot).catch((err: unknown) => {
    if (!/no such pooled shim|hand over to the pooled child/.test(String(err))) throw err;
    return spawnShim(shim.args, shim.env);
  });
}

class NsContainer extends ShimProcess implements Container {
  private readonly runtime: NsRuntime;
  private readonly saved: SavedState;

  constructor(runtime: NsRuntime, dir: string, saved: SavedState) {
    super(saved.id, dir, { tty: saved.tty, openStdin: saved.openStdin });
    this.runtime = runtime;
    this.saved = saved;
  }

  async recreate(): Promise<void> {
    if ((await this.state()).status !== 'exited') throw new KrError('conflict', `container ${this.id} has not exited`);
    if (!this.saved.shim) throw new KrError('unavailable', `container ${this.id} was created by an older krd and cannot run again`);
    // a new supervisor on the same state dir: same overlay upper dir, log opened for append;
    // after any docker cp view of the stopped container is gone (one overlay mount at a time)
    await this.runtime.views.idle(this.id);
    await spawnShim(this.saved.shim.args, this.saved.shim.env);
  }

  pause(): Promise<void> {
    return freeze(this.saved.cgroups, true);
  }

  update(r: Resources): Promise<void> {
    return applyLimits(this.saved.cgroups, r);
  }

  resume(): Promise<void> {
    return freeze(this.saved.cgroups, false);
  }

  async exec(execId: string, spec: ExecSpec): Promise<RuntimeProcess> {
    if (!ID.test(execId)) throw new KrError('invalid', `invalid exec id: ${JSON.stringify(execId)}`);
    const st = await this.state();
    if (st.status !== 'running' || st.pid === undefined) throw new KrError('conflict', `container ${this.id} is not running`);
    const dir = join(this.dir, 'execs', execId);
    await mkdir(dir, { recursive: true });
    // the user is looked up in the container's live root, which sees its own changes
    const args = this.runtime.processArgs(`/proc/${st.pid}/root`, spec, this.saved);
    const flags = { tty: !!spec.tty, openStdin: !!spec.openStdin };
    // what a later execProcess needs to talk to it (the supervisor holds everything else)
    await writeFile(join(dir, 'exec.json'), JSON.stringify(flags));
    await spawnShim([dir, '--join', String(st.pid), ...args, '--', ...spec.args], withDefaultPath(spec.env ?? []));
    return new ShimProcess(execId, dir, flags);
  }

  async execProcess(execId: string): Promise<RuntimeProcess> {
    if (!ID.test(execId)) throw new KrError('invalid', `invalid exec id: ${JSON.stringify(execId)}`);
    const dir = join(this.dir, 'execs', execId);
    const text = await readFile(join(dir, 'exec.json'), 'utf8').catch(() => null);
    if (text === null) throw new KrError('not-found', `no such exec: ${execId}`);
    return new ShimProcess(execId, dir, JSON.parse(text) as { tty: boolean; openStdin: boolean });
  }

  logs(opts: LogOptions = {}): AsyncIterable<LogEntry> {
    return readLog(join(this.dir, 'log'), opts, async () => (await this.exitStatus()) !== undefined);
  }

  async stats(): Promise<Stats> {
    const [stats, st] = await Promise.all([readStats(this.saved.cgroups), this.state()]);
    const args = this.saved.shim?.args ?? [];
    const hostNet = args[args.indexOf('--net') + 1] === 'host';
    if (st.status === 'running' && st.pid !== undefined && (!hostNet || this.runtime.podNetwork)) stats.networks = await readNetDev(st.pid);
    return stats;
  }

  async top(psArgs: string[]): Promise<TopResult> {
    return psTop(await cgroupPids(this.saved.cgroups), psArgs);
  }

  override async start(): Promise<void> {
    await this.runtime.views.idle(this.id);
    return super.start();
  }

  /** The filesystem as the container sees it (see root-view.ts for why this way). */
  private async rootView(): Promise<RootView> {
    const st = await this.state();
    if (st.status !== 'exited' && st.pid !== undefined) return { root: `/proc/${st.pid}/root/`, release: async () => undefined };
    const mountArgs = this.saved.mountArgs ?? ['--lower', this.saved.lower, '--upper', join(this.dir, 'upper'), '--work', join(this.dir, 'work')];
    return this.runtime.views.forStopped(this.dir, this.id, mountArgs, this.saved.caps);
  }

  async changes(): Promise<FsChange[]> {
    return (await this.scanUpper()).map(({ path, kind }) => ({ path, kind }));
  }

  async layer(): Promise<Readable> {
    return layerTar(await this.scanUpper());
  }

  private async scanUpper() {
    const args = this.saved.mountArgs ?? [];
    // --bind SRC:DST[:ro] and --tmpfs DST[:OPTS]: the paths the shim mounted on
    const mountPoints = args.flatMap((a, i) => (a === '--bind' ? [args[i + 1].split(':')[1]] : a === '--tmpfs' ? [args[i + 1].split(':')[0]] : []));
    const view = await this.rootView();
    try {
      return await scanUpper({ upper: join(this.dir, 'upper'), lower: this.saved.lower, merged: view.root, mountPoints });
    } finally {
      await view.release();
    }
  }

  async statPath(path: string): Promise<PathStat> {
    const view = await this.rootView();
    try {
      return await statInRoot(view.root, path, this.id);
    } finally {
      await view.release();
    }
  }

  async getArchive(path: string): Promise<{ stat: PathStat; tar: Readable }> {
    const view = await this.rootView();
    try {
      const { stat, tar } = await archiveInRoot(view.root, path, this.id);
      const stream = Readable.from(tar, { objectMode: false });
      stream.once('close', () => void view.release());
      return { stat, tar: stream };
    } catch (err) {
      await view.release();
      throw err;
    }
  }

  async putArchive(path: string, tar: AsyncIterable<Buffer>, opts: PutArchiveOptions = {}): Promise<void> {
    const view = await this.rootView();
    try {
      const owner = opts.ownerUser ? resolveUser(view.root, opts.ownerUser) : undefined;
      await extractInRoot(view.root, path, this.id, tar, { ...opts, owner: owner && { uid: owner.uid, gid: owner.gid } });
    } finally {
      await view.release();
    }
  }

  override async delete(opts: { force?: boolean } = {}): Promise<void> {
    const st = await this.state();
    if (st.status !== 'exited') {
      if (!opts.force && st.status === 'running') throw new KrError('conflict', `container ${this.id} is running: stop it first or force`);
      // a frozen process takes its SIGKILL only once thawed (cgroup v1)
      await this.resume().catch(() => undefined);
      // Repeated until the exit is seen: one lost signal frame must not hang delete for ever.
      const exited = this.wait().catch(() => undefined);
      let done = false;
      void exited.then(() => (done = true));
      for (let i = 0; i < 30 && !done; i++) {
        await this.kill('SIGKILL').catch(() => undefined);
        await Promise.race([exited, new Promise((r) => setTimeout(r, 1000).unref())]);
      }
      await exited;
    }
    await this.runtime.views.idle(this.id);
    this.runtime.forget(this.id);
    await Promise.all([removeCgroups(this.saved.cgroups), this.runtime.discard(this.dir)]);
  }
}
