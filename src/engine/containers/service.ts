// The container service: records in the state database, processes in the runtime (state under
// the data root). One watcher per started container turns its exit into the record's state
// (and removes it with AutoRemove); waiters listen for those transitions.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { KrError, isKrError } from '../../util/errors.ts';
import type { Container, LogEntry, Runtime, Stdio } from '../../runtime/runtime.ts';
import type { ImageService } from '../images/service.ts';
import type { StateDb } from '../state/db.ts';
import type { EventService } from '../events/service.ts';
import { signalNumber } from '../../runtime/signals.ts';
import { commandOf, parseCreate } from './config.ts';
import { checkName, generateName } from './names.ts';
import { ContainerRecords, type ContainerRecord } from './records.ts';
import { inspectView, listView, matchesFilters } from './views.ts';
import { pruneFilter } from './prune.ts';
import { runtimeSpecOf } from './host-resources.ts';
import { restartDelay, startsWithDaemon } from './restart-policy.ts';
import type { ContainerNetworks } from '../networks/attachments.ts';
import { ContainerMounts } from '../volumes/container-mounts.ts';
import type { VolumeService } from '../volumes/service.ts';

/** What containers need of networking (krd's ContainerNetworks; vdocker's pod has one network, the VM's). */
export type ContainerNetworking = Pick<ContainerNetworks, 'prepare' | 'release' | 'started' | 'stopped' | 'settings' | 'listSummary'>;

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

export class ContainerService {
  readonly records: ContainerRecords;
  /** null where containers are not created here (vdocker serves a pod's fixed containers). */
  private readonly images: ImageService | null;
  private readonly runtime: Runtime;
  private readonly transitions = new EventEmitter();
  private readonly bus: EventService;
  private readonly networks: ContainerNetworking;
  /** Volumes, binds and tmpfs of each container (src/engine/volumes). */
  readonly mounts: ContainerMounts;
  /** Started containers whose exit is being watched: resolves once the record says exited. */
  private readonly watchers = new Map<string, Promise<void>>();
  private readonly removing = new Map<string, Promise<void>>();
  /** Starts under way (user or policy), so a stop or a second start waits for them. */
  private readonly starting = new Map<string, Promise<void>>();
  /** Policy restarts waiting out their delay, and the last delay per container (the back-off). */
  private readonly pendingRestarts = new Map<string, NodeJS.Timeout>();
  private readonly restartDelays = new Map<string, number>();

  constructor(state: StateDb, images: ImageService | null, runtime: Runtime, bus: EventService, networks: ContainerNetworking, volumes: VolumeService | null = null) {
    this.mounts = new ContainerMounts(state, volumes);
    this.records = new ContainerRecords(state);
    this.images = images;
    this.runtime = runtime;
    this.bus = bus;
    this.networks = networks;
    this.transitions.setMaxListeners(0);
  }

  /**
   * After a (re)start of krd: watch what still runs; record what exited meanwhile; start what the
   * restart policies say (docker's daemon-startup rules, see restart-policy.ts).
   */
  async recover(): Promise<void> {
    const starts: Promise<void>[] = [];
    const startLater = (r: ContainerRecord) => {
      this.records.resetRestarts(r.id);
      starts.push(this.run(r.id).catch(() => this.records.markExited(r.id, r.exit_code ?? 255, Date.now())));
    };
    for (const r of this.records.all()) {
      const policy = r.hostConfig.RestartPolicy;
      if (r.state === 'restarting') {
        starts.push(this.policyRestart(r.id)); // krd died during the back-off
        continue;
      }
      if (r.state === 'exited') {
        if (startsWithDaemon(policy, r.exit_code ?? 0, !!r.manually_stopped)) startLater(r);
        continue;
      }
      if (r.state !== 'running' && r.state !== 'created' && r.state !== 'paused') continue;
      const c = await this.runtime.reattach(r.id).catch(() => null);
      const st = c ? await c.state().catch(() => null) : null;
      if (!c || !st) {
        if (r.state !== 'created') this.records.markExited(r.id, 255, Date.now());
        continue;
      }
      if (st.status === 'created') continue;
      if (st.status === 'exited' && r.state !== 'created') {
        // it ended while krd was away
        const code = st.exit?.exitCode ?? 255;
        this.records.markExited(r.id, code, st.exit?.finishedAt.getTime() || Date.now());
        this.event(r, 'die', { exitCode: String(code) });
        if (startsWithDaemon(policy, code, !!r.manually_stopped)) startLater(r);
        continue;
      }
      if (r.state === 'created') this.records.markRunning(r.id, st.pid ?? null, Date.now());
      this.watch(r.id, c);
    }
    await Promise.all(starts);
  }

  /** A container event as dockerd logs it: labels, image and name, plus the action's own attributes. */
  event(r: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.bus.publish('container', action, r.id, { ...r.config.Labels, image: r.image_ref, name: r.name, ...extra });
  }

  /** A container by full ID, name ("/name" too) or unique ID prefix; docker's 404 otherwise. */
  resolve(ref: string): ContainerRecord {
    const byId = this.records.get(ref);
    if (byId) return byId;
    const byName = this.records.byName(ref.replace(/^\//, ''));
    if (byName) return byName;
    if (/^[a-f0-9]+$/.test(ref)) {
      const ids = this.records.byPrefix(ref);
      if (ids.length > 1) throw new KrError('invalid', `multiple IDs found with provided prefix: ${ref}`);
      const r = ids.length === 1 ? this.records.get(ids[0]) : undefined;
      if (r) return r;
    }
    throw new KrError('not-found', `No such container: ${ref}`);
  }

  async create(body: unknown, name?: string): Promise<{ Id: string; Warnings: string[] }> {
    if (!this.images) throw new KrError('unavailable', 'containers cannot be created here');
    const imageName = (body as { Image?: unknown } | null)?.Image;
    if (typeof imageName !== 'string' || imageName === '') throw new KrError('invalid', 'config error: no image given');
    const { id: imageId } = this.images.resolve(imageName);
    const image = await this.images.image(imageId);
    const { config, hostConfig, mounts } = parseCreate(body, image.config.config ?? {});
    const wanted = name ? checkName(name) : undefined;
    const clash = wanted && this.records.byName(wanted);
    if (clash) {
      throw new KrError('conflict', `Conflict. The container name "/${wanted}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    const id = randomBytes(32).toString('hex');
    if (!config.Hostname) config.Hostname = id.slice(0, 12);
    const prepared = await this.mounts.prepare(id, mounts);
    const net = await this.networks.prepare({ id, name: wanted ?? '', hostname: config.Hostname, domainname: config.Domainname, hostConfig, exposedPorts: config.ExposedPorts ?? {}, body }).catch(async (err) => {
      await prepared.undo();
      throw err;
    });
    await this.runtime.create({
      id,
      rootfs: { image },
      args: commandOf(config),
      env: config.Env,
      cwd: config.WorkingDir || '/',
      user: config.User || undefined,
      tty: config.Tty,
      openStdin: config.OpenStdin,
      hostname: config.Hostname,
      mounts: [...net.mounts, ...prepared.specs],
      ...runtimeSpecOf(hostConfig),
      init: !!hostConfig.Init,
      network: net.network,
    }).catch(async (err) => {
      await this.networks.release(id);
      await prepared.undo();
      throw err;
    });
    try {
      this.records.insert({
        id,
        name: wanted ?? generateName((n) => !!this.records.byName(n)),
        image_id: imageId,
        image_ref: imageName,
        runtime: this.runtime.name,
        config,
        hostConfig,
      });
      this.mounts.commit(id, prepared.records);
    } catch (err) {
      this.records.remove(id);
      await this.runtime.reattach(id).then((c) => c.delete({ force: true })).catch(() => undefined);
      await this.networks.release(id);
      await prepared.undo();
      if (/UNIQUE/.test(String(err))) throw new KrError('conflict', `Conflict. The container name "/${wanted}" is already in use.`);
      throw err;
    }
    this.event(this.records.get(id)!, 'create');
    return { Id: id, Warnings: [] };
  }

  /** false when it was already running (docker's 304). A start by the user resets the restart policy. */
  async start(ref: string): Promise<boolean> {
    const r = this.resolve(ref);
    const inFlight = this.starting.get(r.id);
    if (inFlight) {
      await inFlight.catch(() => undefined);
      return false;
    }
    if (r.state === 'paused') throw new KrError('conflict', 'cannot start a paused container, try unpause instead');
    if (r.state === 'running' || r.state === 'restarting') return false;
    this.records.resetRestarts(r.id);
    this.restartDelays.delete(r.id);
    await this.run(r.id);
    return true;
  }

  /** Starts the main process: once more (same rootfs, log appended) when it has run before. */
  private run(id: string): Promise<void> {
    const p = (async () => {
      const c = await this.runtime.reattach(id);
      const st = await c.state();
      // exited: a fresh process; created: never started, or prepared by an attach (docker start -a)
      if (st.status === 'running') throw new KrError('conflict', `container ${id} is already running`);
      // the network first: a recreated supervisor joins the container's namespace at once
      await this.networks.started(id);
      try {
        if (st.status === 'exited') await c.recreate();
        await c.start();
      } catch (err) {
        this.networks.stopped(id);
        throw err;
      }
      const now = await c.state();
      this.records.markRunning(id, now.pid ?? null, Date.now());
      this.watch(id, c);
      const r = this.records.get(id);
      if (r) this.event(r, 'start');
      this.mounts.started(id);
    })().finally(() => this.starting.delete(id));
    this.starting.set(id, p);
    return p;
  }

  private watch(id: string, c: Container): void {
    if (this.watchers.has(id)) return;
    const done = c
      .wait()
      .then((exit) => ({ code: exit.exitCode, at: exit.finishedAt.getTime() }))
      .catch(() => ({ code: 255, at: Date.now() }))
      .then(async ({ code, at }) => {
        this.watchers.delete(id);
        await this.exited(id, code, Number.isFinite(at) ? at : Date.now());
      })
      // an exit seen after the state database was closed (shutting down) is recovered at the next start
      .catch(() => undefined);
    this.watchers.set(id, done);
  }

  /** An exit: recorded, then the restart policy decides (restarting, back-off) or AutoRemove. */
  private async exited(id: string, code: number, finished: number): Promise<void> {
    const r = this.records.get(id);
    if (!r) return;
    const delay = restartDelay(r.hostConfig.RestartPolicy, { code, ranMs: finished - (r.started ?? finished) }, { restartCount: r.restart_count, manuallyStopped: !!r.manually_stopped, lastDelayMs: this.restartDelays.get(id) });
    if (delay === null) this.records.markExited(id, code, finished);
    else this.records.markRestarting(id, code, finished);
    this.event(r, 'die', { exitCode: String(code), execDuration: String(Math.max(0, Math.floor((finished - (r.started ?? finished)) / 1000))) });
    this.mounts.stopped(id);
    this.transitions.emit(`exit:${id}`, code);
    if (delay === null) this.networks.stopped(id);
    if (delay !== null) {
      this.restartDelays.set(id, delay);
      this.pendingRestarts.set(id, setTimeout(() => void this.policyRestart(id), delay).unref());
    } else if (r.hostConfig.AutoRemove) {
      // --rm takes the container's anonymous volumes with it, as docker does
      await this.removeNow(id, true).catch(() => undefined);
    }
  }

  /** The restart a policy scheduled (unless a stop or rm came first). */
  private async policyRestart(id: string): Promise<void> {
    clearTimeout(this.pendingRestarts.get(id));
    this.pendingRestarts.delete(id);
    const r = this.records.get(id);
    if (!r || r.state !== 'restarting') return;
    await this.run(id).catch(() => this.stayExited(id, r.exit_code ?? 255, Date.now()));
  }

  /** A restarting container whose next start is called off: it stays exited. */
  private cancelRestart(id: string): void {
    clearTimeout(this.pendingRestarts.get(id));
    this.pendingRestarts.delete(id);
    const r = this.records.get(id);
    if (r?.state === 'restarting') this.stayExited(id, r.exit_code ?? 0, r.finished ?? Date.now());
  }

  /** The end of a restart cycle: exited for good, its published ports freed. */
  private stayExited(id: string, code: number, finished: number): void {
    this.records.markExited(id, code, finished);
    this.networks.stopped(id);
  }

  /** Resolves the condition's exit code; throws at once (before any answer) for an unknown container. */
  wait(ref: string, condition: WaitCondition, signal?: AbortSignal): { id: string; done: Promise<number> } {
    const r = this.resolve(ref);
    const event = condition === 'removed' ? `removed:${r.id}` : `exit:${r.id}`;
    // as dockerd: a restarting or paused container counts as running
    if (condition === 'not-running' && !['running', 'restarting', 'paused'].includes(r.state)) return { id: r.id, done: Promise.resolve(r.exit_code ?? 0) };
    const done = new Promise<number>((resolve, reject) => {
      const on = (code: number) => resolve(code);
      this.transitions.once(event, on);
      signal?.addEventListener('abort', () => {
        this.transitions.off(event, on);
        reject(new KrError('unavailable', 'client went away'));
      });
    });
    return { id: r.id, done };
  }

  /** A current record, after any start under way has settled. */
  private async settled(ref: string): Promise<ContainerRecord> {
    const r = this.resolve(ref);
    await this.starting.get(r.id)?.catch(() => undefined);
    return this.records.get(r.id) ?? r;
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const r = await this.settled(ref);
    if (r.state === 'restarting') throw new KrError('conflict', `Cannot kill container: ${ref}: Container ${r.id} is restarting, wait until the container is running`);
    if (r.state !== 'running' && r.state !== 'paused') throw new KrError('conflict', `Cannot kill container: ${ref}: Container ${r.id} is not running`);
    const n = signalNumber(signal);
    // as dockerd: SIGKILL or the stop signal counts as a stop by hand (no policy restart)
    const final = n === 9 || n === signalNumber(r.config.StopSignal || 'SIGTERM');
    if (final) this.records.setManuallyStopped(r.id, true);
    const c = await this.runtime.reattach(r.id);
    await c.kill(signal);
    this.event(r, 'kill', { signal: String(n) });
    if (final && r.state === 'paused') await this.thaw(r, c);
  }

  /** A paused container thawed so a fatal signal takes effect (docker kill/stop/rm -f of a paused one). */
  private async thaw(r: ContainerRecord, c: Container): Promise<void> {
    await c.resume();
    if (this.records.get(r.id)?.state === 'paused') this.records.setPaused(r.id, false);
    this.event(r, 'unpause');
  }

  /** The stop signal, then SIGKILL after `timeout` seconds (-1: never); false if not running (304). */
  async stop(ref: string, timeout?: number, signal?: string): Promise<boolean> {
    const r = await this.settled(ref);
    if (r.state === 'restarting') {
      this.records.setManuallyStopped(r.id, true);
      this.cancelRestart(r.id);
      this.event(r, 'stop');
      return true;
    }
    if (r.state !== 'running' && r.state !== 'paused') return false;
    this.records.setManuallyStopped(r.id, true);
    const c = await this.runtime.reattach(r.id);
    this.watch(r.id, c);
    const exited = this.watchers.get(r.id)!;
    const stopSignal = signal || r.config.StopSignal || 'SIGTERM';
    await c.kill(stopSignal).then(() => this.event(r, 'kill', { signal: String(signalNumber(stopSignal)) }), () => undefined);
    if (r.state === 'paused') await this.thaw(r, c);
    const t = timeout ?? 10;
    if (t >= 0) {
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([exited.then(() => false), new Promise<boolean>((res) => (timer = setTimeout(() => res(true), t * 1000)))]);
      clearTimeout(timer);
      if (late) await killUntilExited(c, exited);
    }
    await exited;
    this.event(r, 'stop');
    return true;
  }

  /** docker restart: stop (signal, timeout) when running, then start; the policy counts from zero. */
  async restart(ref: string, timeout?: number, signal?: string): Promise<void> {
    const r = await this.settled(ref);
    await this.stop(r.id, timeout, signal);
    await this.start(r.id);
    this.event(this.records.get(r.id) ?? r, 'restart');
  }

  async pause(ref: string): Promise<void> {
    const r = await this.settled(ref);
    if (r.state === 'paused') throw new KrError('conflict', `Container ${r.id} is already paused`);
    if (r.state === 'restarting') throw new KrError('conflict', `Container ${r.id} is restarting, wait until the container is running`);
    if (r.state !== 'running') throw new KrError('conflict', `Container ${r.id} is not running`);
    await (await this.runtime.reattach(r.id)).pause();
    this.records.setPaused(r.id, true);
    this.event(r, 'pause');
  }

  async unpause(ref: string): Promise<void> {
    const r = this.resolve(ref);
    if (r.state !== 'paused') throw new KrError('conflict', `Container ${r.id} is not paused`);
    await (await this.runtime.reattach(r.id)).resume();
    this.records.setPaused(r.id, false);
    this.event(r, 'unpause');
  }

  rename(ref: string, newName: string): void {
    const r = this.resolve(ref);
    if (!newName) throw new KrError('invalid', 'Neither old nor new names may be empty');
    const name = checkName(newName);
    if (name === r.name) throw new KrError('invalid', 'Renaming a container with the same name as its current name');
    const clash = this.records.byName(name);
    if (clash) throw new KrError('conflict', `Conflict. The container name "/${name}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`);
    try {
      this.records.rename(r.id, name);
    } catch (err) {
      if (/UNIQUE/.test(String(err))) throw new KrError('conflict', `Conflict. The container name "/${name}" is already in use.`);
      throw err;
    }
    this.event({ ...r, name }, 'rename', { oldName: `/${r.name}` });
  }

  /** `removeVolumes` (docker rm -v): its anonymous volumes go too. */
  async remove(ref: string, force: boolean, removeVolumes = false): Promise<void> {
    const r = await this.settled(ref);
    if (r.state === 'running' || r.state === 'paused' || r.state === 'restarting') {
      if (!force) {
        const why = r.state === 'paused' ? 'container is paused and must be unpaused first' : `container is ${r.state}: stop the container before removing or force remove`;
        throw new KrError('conflict', `cannot remove container "/${r.name}": ${why}`);
      }
      this.records.setManuallyStopped(r.id, true);
      this.cancelRestart(r.id);
      if (r.state !== 'restarting') {
        const c = await this.runtime.reattach(r.id);
        this.watch(r.id, c);
        if (r.state === 'paused') await this.thaw(r, c);
        await killUntilExited(c, this.watchers.get(r.id)!);
      }
    }
    await this.removeNow(r.id, removeVolumes);
  }

  /** docker container prune: every container that is not running (filters until, label, label!). */
  async prune(filters: Map<string, string[]>): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }> {
    const match = pruneFilter(filters);
    const deleted: string[] = [];
    for (const r of this.records.all()) {
      if (r.state === 'running' || r.state === 'paused' || r.state === 'restarting' || this.starting.has(r.id) || !match(r)) continue;
      await this.removeNow(r.id);
      deleted.push(r.id);
    }
    this.bus.publish('container', 'prune', '', { reclaimed: '0' });
    return { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: 0 };
  }

  private removeNow(id: string, removeVolumes = false): Promise<void> {
    let p = this.removing.get(id);
    if (!p) {
      p = (async () => {
        this.cancelRestart(id);
        this.restartDelays.delete(id);
        const code = this.records.get(id)?.exit_code ?? 0;
        const c = await this.runtime.reattach(id).catch((err) => (isKrError(err, 'not-found') ? null : Promise.reject(err)));
        // independent, and both on the path of `docker run --rm`; the runtime's failure wins
        const [deleted, released] = await Promise.allSettled([c?.delete({ force: true }), this.networks.release(id)]);
        if (deleted.status === 'rejected') throw deleted.reason;
        if (released.status === 'rejected') throw released.reason;
        const r = this.records.get(id);
        const held = this.mounts.held(id);
        this.records.remove(id);
        await this.mounts.released(id, held, removeVolumes);
        if (r) this.event(r, 'destroy');
        this.transitions.emit(`removed:${id}`, code);
      })().finally(() => this.removing.delete(id));
      this.removing.set(id, p);
    }
    return p;
  }

  list(all: boolean, filters: Map<string, string[]>): object[] {
    const now = Date.now();
    return this.records
      .all()
      .filter((r) => (all || r.state === 'running' || r.state === 'paused' || r.state === 'restarting' || filters.has('status')) && matchesFilters(r, filters) && this.mounts.matches(r.id, filters.get('volume')))
      .map((r) => ({ ...listView(r, now), ...this.networks.listSummary(r.id), Mounts: this.mounts.view(r.id) }));
  }

  inspect(ref: string): object {
    const r = this.resolve(ref);
    return { ...inspectView(r, { logPath: '' }), Mounts: this.mounts.view(r.id), NetworkSettings: this.networks.settings(r.id) };
  }

  /** The container's stored output; follows until it exits when asked. */
  async logs(ref: string, opts: { follow: boolean; tail?: number; since?: Date; until?: Date; signal?: AbortSignal }): Promise<{ tty: boolean; entries: AsyncIterable<LogEntry> }> {
    const r = this.resolve(ref);
    const c = await this.runtime.reattach(r.id);
    return { tty: r.config.Tty, entries: c.logs(opts) };
  }

  /** Live streams of the main process (before start: all of its output). */
  async attach(ref: string): Promise<{ tty: boolean; stdinOnce: boolean; stdio: Stdio }> {
    const r = await this.settled(ref);
    const c = await this.runtime.reattach(r.id);
    // docker start -a attaches before it starts: an exited container gets its next process now
    if (r.state === 'exited' && (await c.state()).status === 'exited') await c.recreate();
    const stdio = await c.attach();
    this.event(r, 'attach');
    return { tty: r.config.Tty, stdinOnce: r.config.StdinOnce, stdio };
  }

  /** A client left an attach with its detach keys (the container runs on). */
  detached(ref: string): void {
    try {
      this.event(this.resolve(ref), 'detach');
    } catch {
      // removed meanwhile: no event
    }
  }

  async resize(ref: string, rows: number, cols: number): Promise<void> {
    const r = this.resolve(ref);
    if (r.state !== 'running') throw new KrError('conflict', `Container ${r.id} is not running`);
    await (await this.runtime.reattach(r.id)).resize(rows, cols);
    this.event(r, 'resize', { height: String(rows), width: String(cols) });
  }
}

/**
 * SIGKILL, repeated every second until the exit is seen: a signal frame that does not reach the
 * supervisor (a connection refused under load) must not leave `rm -f` or `stop` waiting forever.
 */
async function killUntilExited(c: { kill(signal: string): Promise<void> }, exited: Promise<unknown>): Promise<void> {
  let done = false;
  void exited.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 30 && !done; i++) {
    await c.kill('SIGKILL').catch(() => undefined);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
