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
import { commandOf, parseBind, parseCreate } from './config.ts';
import { checkName, generateName } from './names.ts';
import { ContainerRecords, type ContainerRecord } from './records.ts';
import { inspectView, listView, matchesFilters } from './views.ts';

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

export class ContainerService {
  readonly records: ContainerRecords;
  private readonly images: ImageService;
  private readonly runtime: Runtime;
  private readonly transitions = new EventEmitter();
  private readonly bus: EventService;
  /** Started containers whose exit is being watched: resolves once the record says exited. */
  private readonly watchers = new Map<string, Promise<void>>();
  private readonly removing = new Map<string, Promise<void>>();

  constructor(state: StateDb, images: ImageService, runtime: Runtime, bus: EventService) {
    this.records = new ContainerRecords(state);
    this.images = images;
    this.runtime = runtime;
    this.bus = bus;
    this.transitions.setMaxListeners(0);
  }

  /** After a (re)start of krd: watch what still runs, record what exited meanwhile. */
  async recover(): Promise<void> {
    for (const r of this.records.all()) {
      if (r.state !== 'running' && r.state !== 'created') continue;
      const c = await this.runtime.reattach(r.id).catch(() => null);
      const st = c ? await c.state().catch(() => null) : null;
      if (!c || !st) {
        if (r.state === 'running') this.records.markExited(r.id, 255, Date.now());
        continue;
      }
      if (st.status === 'created') continue;
      if (r.state === 'created') this.records.markRunning(r.id, st.pid ?? null, Date.now());
      this.watch(r.id, c);
    }
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
    const imageName = (body as { Image?: unknown } | null)?.Image;
    if (typeof imageName !== 'string' || imageName === '') throw new KrError('invalid', 'config error: no image given');
    const { id: imageId } = this.images.resolve(imageName);
    const image = await this.images.image(imageId);
    const { config, hostConfig } = parseCreate(body, image.config.config ?? {});
    const wanted = name ? checkName(name) : undefined;
    const clash = wanted && this.records.byName(wanted);
    if (clash) {
      throw new KrError('conflict', `Conflict. The container name "/${wanted}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    const id = randomBytes(32).toString('hex');
    if (!config.Hostname) config.Hostname = id.slice(0, 12);
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
      mounts: (hostConfig.Binds ?? []).map((b) => ({ type: 'bind' as const, ...parseBind(b) })),
      resources: hostConfig.Memory ? { memoryBytes: hostConfig.Memory } : undefined,
      init: !!hostConfig.Init,
      network: 'none',
    });
    try {
      this.records.insert({
        id,
        name: wanted ?? generateName((n) => !!this.records.byName(n)),
        image_id: imageId,
        image_ref: imageName,
        state: 'created',
        created: Date.now(),
        started: null,
        finished: null,
        exit_code: null,
        pid: null,
        runtime: this.runtime.name,
        config,
        hostConfig,
      });
    } catch (err) {
      await this.runtime.reattach(id).then((c) => c.delete({ force: true })).catch(() => undefined);
      if (/UNIQUE/.test(String(err))) throw new KrError('conflict', `Conflict. The container name "/${wanted}" is already in use.`);
      throw err;
    }
    this.event(this.records.get(id)!, 'create');
    return { Id: id, Warnings: [] };
  }

  /** false when it was already running (docker's 304). */
  async start(ref: string): Promise<boolean> {
    const r = this.resolve(ref);
    if (r.state === 'running') return false;
    if (r.state !== 'created') throw new KrError('conflict', `container ${r.id} has already run; starting it again is not supported yet`);
    const c = await this.runtime.reattach(r.id);
    await c.start();
    const st = await c.state();
    this.records.markRunning(r.id, st.pid ?? null, Date.now());
    this.watch(r.id, c);
    this.event(r, 'start');
    return true;
  }

  private watch(id: string, c: Container): void {
    if (this.watchers.has(id)) return;
    const done = c
      .wait()
      .then((exit) => ({ code: exit.exitCode, at: exit.finishedAt.getTime() }))
      .catch(() => ({ code: 255, at: Date.now() }))
      .then(async ({ code, at }) => {
        const finished = Number.isFinite(at) ? at : Date.now();
        this.records.markExited(id, code, finished);
        this.watchers.delete(id);
        const r = this.records.get(id);
        if (r) this.event(r, 'die', { exitCode: String(code), execDuration: String(Math.max(0, Math.floor((finished - (r.started ?? finished)) / 1000))) });
        this.transitions.emit(`exit:${id}`, code);
        if (this.records.get(id)?.hostConfig.AutoRemove) await this.removeNow(id).catch(() => undefined);
      });
    this.watchers.set(id, done);
  }

  /** Resolves the condition's exit code; throws at once (before any answer) for an unknown container. */
  wait(ref: string, condition: WaitCondition, signal?: AbortSignal): { id: string; done: Promise<number> } {
    const r = this.resolve(ref);
    const event = condition === 'removed' ? `removed:${r.id}` : `exit:${r.id}`;
    if (condition === 'not-running' && r.state !== 'running') return { id: r.id, done: Promise.resolve(r.exit_code ?? 0) };
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

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const r = this.resolve(ref);
    if (r.state !== 'running') throw new KrError('conflict', `Cannot kill container: ${ref}: Container ${r.id} is not running`);
    const c = await this.runtime.reattach(r.id);
    await c.kill(signal);
    this.event(r, 'kill', { signal: String(signalNumber(signal)) });
  }

  /** The stop signal, then SIGKILL after `timeout` seconds (-1: never); false if not running (304). */
  async stop(ref: string, timeout?: number, signal?: string): Promise<boolean> {
    const r = this.resolve(ref);
    if (r.state !== 'running') return false;
    const c = await this.runtime.reattach(r.id);
    this.watch(r.id, c);
    const exited = this.watchers.get(r.id)!;
    const stopSignal = signal || r.config.StopSignal || 'SIGTERM';
    await c.kill(stopSignal).then(() => this.event(r, 'kill', { signal: String(signalNumber(stopSignal)) }), () => undefined);
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

  async remove(ref: string, force: boolean): Promise<void> {
    const r = this.resolve(ref);
    if (r.state === 'running' || r.state === 'paused' || r.state === 'restarting') {
      if (!force) throw new KrError('conflict', `cannot remove container "/${r.name}": container is running: stop the container before removing or force remove`);
      const c = await this.runtime.reattach(r.id);
      this.watch(r.id, c);
      await killUntilExited(c, this.watchers.get(r.id)!);
    }
    await this.removeNow(r.id);
  }

  private removeNow(id: string): Promise<void> {
    let p = this.removing.get(id);
    if (!p) {
      p = (async () => {
        const code = this.records.get(id)?.exit_code ?? 0;
        const c = await this.runtime.reattach(id).catch((err) => (isKrError(err, 'not-found') ? null : Promise.reject(err)));
        await c?.delete({ force: true });
        const r = this.records.get(id);
        this.records.remove(id);
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
      .filter((r) => (all || r.state === 'running' || filters.has('status')) && matchesFilters(r, filters))
      .map((r) => listView(r, now));
  }

  inspect(ref: string): object {
    const r = this.resolve(ref);
    return inspectView(r, { logPath: '' });
  }

  /** The container's stored output; follows until it exits when asked. */
  async logs(ref: string, opts: { follow: boolean; tail?: number; since?: Date; until?: Date; signal?: AbortSignal }): Promise<{ tty: boolean; entries: AsyncIterable<LogEntry> }> {
    const r = this.resolve(ref);
    const c = await this.runtime.reattach(r.id);
    return { tty: r.config.Tty, entries: c.logs(opts) };
  }

  /** Live streams of the main process (before start: all of its output). */
  async attach(ref: string): Promise<{ tty: boolean; stdinOnce: boolean; stdio: Stdio }> {
    const r = this.resolve(ref);
    const c = await this.runtime.reattach(r.id);
    const stdio = await c.attach();
    this.event(r, 'attach');
    return { tty: r.config.Tty, stdinOnce: r.config.StdinOnce, stdio };
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
