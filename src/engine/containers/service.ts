// The container service: records in the state database, processes in the runtime (state under
// the data root). Starts, exits, policy restarts and waits are lifecycle.ts's.
import { randomBytes } from 'node:crypto';
import { KrError, isKrError } from '../../util/errors.ts';
import type { Container, LogEntry, Runtime, Stdio } from '../../runtime/runtime.ts';
import type { ImageService } from '../images/service.ts';
import type { StateDb } from '../state/db.ts';
import type { EventService } from '../events/service.ts';
import { signalNumber } from '../../runtime/signals.ts';
import { commandOf, parseCreate } from './config.ts';
import { checkName, generateName, nameInUse } from './names.ts';
import { ContainerRecords, type ContainerRecord } from './records.ts';
import { inspectView, listView, matchesFilters } from './views.ts';
import { pruneFilter } from './prune.ts';
import { runtimeSpecOf } from './host-resources.ts';
import { ContainerLifecycle, killUntilExited } from './lifecycle.ts';
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
  private readonly lifecycle: ContainerLifecycle;
  private readonly bus: EventService;
  private readonly networks: ContainerNetworking;
  /** Volumes, binds and tmpfs of each container (src/engine/volumes). */
  readonly mounts: ContainerMounts;
  private readonly removing = new Map<string, Promise<void>>();

  constructor(state: StateDb, images: ImageService | null, runtime: Runtime, bus: EventService, networks: ContainerNetworking, volumes: VolumeService | null = null) {
    this.mounts = new ContainerMounts(state, volumes);
    this.records = new ContainerRecords(state);
    this.images = images;
    this.runtime = runtime;
    this.bus = bus;
    this.networks = networks;
    this.lifecycle = new ContainerLifecycle({
      records: this.records,
      runtime,
      networks,
      mounts: this.mounts,
      event: (r, action, extra) => this.event(r, action, extra),
      // --rm takes the container's anonymous volumes with it, as docker does
      autoRemove: (id) => this.removeNow(id, true),
    });
  }

  /** After a (re)start of krd: what runs watched, what exited recorded, what the policies say started. */
  recover(): Promise<void> {
    return this.lifecycle.recover();
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
    if (clash) throw nameInUse(wanted, clash.id);
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
    const chosen = wanted ?? generateName((n) => !!this.records.byName(n));
    try {
      this.records.insert({
        id,
        name: chosen,
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
      if (/UNIQUE/.test(String(err))) throw nameInUse(chosen);
      throw err;
    }
    this.event(this.records.get(id)!, 'create');
    return { Id: id, Warnings: [] };
  }

  /** false when it was already running (docker's 304). A start by the user resets the restart policy. */
  async start(ref: string): Promise<boolean> {
    return this.lifecycle.start(this.resolve(ref));
  }

  /** Resolves the condition's exit code; throws at once (before any answer) for an unknown container. */
  wait(ref: string, condition: WaitCondition, signal?: AbortSignal): { id: string; done: Promise<number> } {
    const r = this.resolve(ref);
    return { id: r.id, done: this.lifecycle.wait(r, condition, signal) };
  }

  /** A current record, after any start under way has settled. */
  private async settled(ref: string): Promise<ContainerRecord> {
    const r = this.resolve(ref);
    await this.lifecycle.startUnderWay(r.id)?.catch(() => undefined);
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
      this.lifecycle.cancelRestart(r.id);
      this.event(r, 'stop');
      return true;
    }
    if (r.state !== 'running' && r.state !== 'paused') return false;
    this.records.setManuallyStopped(r.id, true);
    const c = await this.runtime.reattach(r.id);
    const exited = this.lifecycle.exitOf(r.id, c);
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
    if (clash) throw nameInUse(name, clash.id);
    try {
      this.records.rename(r.id, name);
    } catch (err) {
      if (/UNIQUE/.test(String(err))) throw nameInUse(name);
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
      this.lifecycle.cancelRestart(r.id);
      if (r.state !== 'restarting') {
        const c = await this.runtime.reattach(r.id);
        const exited = this.lifecycle.exitOf(r.id, c);
        if (r.state === 'paused') await this.thaw(r, c);
        await killUntilExited(c, exited);
      }
    }
    await this.removeNow(r.id, removeVolumes);
  }

  /** docker container prune: every container that is not running (filters until, label, label!). */
  async prune(filters: Map<string, string[]>): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }> {
    const match = pruneFilter(filters);
    const deleted: string[] = [];
    for (const r of this.records.all()) {
      if (r.state === 'running' || r.state === 'paused' || r.state === 'restarting' || this.lifecycle.startUnderWay(r.id) !== undefined || !match(r)) continue;
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
        this.lifecycle.removing(id);
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
        this.lifecycle.removed(id, code);
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
