// Starts, exits and restarts of containers. One watcher per started container turns its exit into
// the record's state; the restart policy then schedules the next start (with dockerd's back-off)
// or, with AutoRemove, the removal; waiters listen for those transitions. After a (re)start of
// krd, recover() watches what still runs and starts what the policies say.
import { EventEmitter } from 'node:events';
import { KrError } from '../../util/errors.ts';
import type { Container, Runtime } from '../../runtime/runtime.ts';
import type { ContainerMounts } from '../volumes/container-mounts.ts';
import type { ContainerRecord, ContainerRecords } from './records.ts';
import { restartDelay, startsWithDaemon } from './restart-policy.ts';
import type { ContainerNetworking, WaitCondition } from './service.ts';

/** What the lifecycle works with; `event` and `autoRemove` are the container service's. */
export interface LifecycleParts {
  records: ContainerRecords;
  runtime: Runtime;
  networks: ContainerNetworking;
  mounts: ContainerMounts;
  event(r: ContainerRecord, action: string, extra?: Record<string, string>): void;
  /** docker run --rm: removes an exited container with its anonymous volumes. */
  autoRemove(id: string): Promise<void>;
}

export class ContainerLifecycle {
  private readonly parts: LifecycleParts;
  private readonly transitions = new EventEmitter();
  /** Started containers whose exit is being watched: resolves once the record says exited. */
  private readonly watchers = new Map<string, Promise<void>>();
  /** Starts under way (user or policy), so a stop or a second start waits for them. */
  private readonly starting = new Map<string, Promise<void>>();
  /** Policy restarts waiting out their delay, and the last delay per container (the back-off). */
  private readonly pendingRestarts = new Map<string, NodeJS.Timeout>();
  private readonly restartDelays = new Map<string, number>();

  constructor(parts: LifecycleParts) {
    this.parts = parts;
    this.transitions.setMaxListeners(0);
  }

  /**
   * After a (re)start of krd: watch what still runs; record what exited meanwhile; start what the
   * restart policies say (docker's daemon-startup rules, see restart-policy.ts).
   */
  async recover(): Promise<void> {
    const { records, runtime } = this.parts;
    const starts: Promise<void>[] = [];
    const startLater = (r: ContainerRecord) => {
      records.resetRestarts(r.id);
      starts.push(this.run(r.id).catch(() => records.markExited(r.id, r.exit_code ?? 255, Date.now())));
    };
    for (const r of records.all()) {
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
      const c = await runtime.reattach(r.id).catch(() => null);
      const st = c ? await c.state().catch(() => null) : null;
      if (!c || !st) {
        if (r.state !== 'created') records.markExited(r.id, 255, Date.now());
        continue;
      }
      if (st.status === 'created') continue;
      if (st.status === 'exited' && r.state !== 'created') {
        // it ended while krd was away
        const code = st.exit?.exitCode ?? 255;
        records.markExited(r.id, code, st.exit?.finishedAt.getTime() || Date.now());
        this.parts.event(r, 'die', { exitCode: String(code) });
        if (startsWithDaemon(policy, code, !!r.manually_stopped)) startLater(r);
        continue;
      }
      if (r.state === 'created') records.markRunning(r.id, st.pid ?? null, Date.now());
      this.watch(r.id, c);
    }
    await Promise.all(starts);
  }

  /** false when it was already running (docker's 304). A start by the user resets the restart policy. */
  async start(r: ContainerRecord): Promise<boolean> {
    const inFlight = this.starting.get(r.id);
    if (inFlight) {
      await inFlight.catch(() => undefined);
      return false;
    }
    if (r.state === 'paused') throw new KrError('conflict', 'cannot start a paused container, try unpause instead');
    if (r.state === 'running' || r.state === 'restarting') return false;
    this.parts.records.resetRestarts(r.id);
    this.restartDelays.delete(r.id);
    await this.run(r.id);
    return true;
  }

  /** The start under way for this container, if any. */
  startUnderWay(id: string): Promise<void> | undefined {
    return this.starting.get(id);
  }

  /** Starts the main process: once more (same rootfs, log appended) when it has run before. */
  private run(id: string): Promise<void> {
    const { records, runtime, networks, mounts } = this.parts;
    const p = (async () => {
      const c = await runtime.reattach(id);
      const st = await c.state();
      // exited: a fresh process; created: never started, or prepared by an attach (docker start -a)
      if (st.status === 'running') throw new KrError('conflict', `container ${id} is already running`);
      // the network first: a recreated supervisor joins the container's namespace at once
      await networks.started(id);
      try {
        if (st.status === 'exited') await c.recreate();
        await c.start();
      } catch (err) {
        networks.stopped(id);
        throw err;
      }
      const now = await c.state();
      records.markRunning(id, now.pid ?? null, Date.now());
      this.watch(id, c);
      const r = records.get(id);
      if (r) this.parts.event(r, 'start');
      mounts.started(id);
    })().finally(() => this.starting.delete(id));
    this.starting.set(id, p);
    return p;
  }

  /** Its exit, watched from now on if it was not yet: resolves once the record says exited. */
  exitOf(id: string, c: Container): Promise<void> {
    this.watch(id, c);
    return this.watchers.get(id)!;
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
    const { records, networks, mounts } = this.parts;
    const r = records.get(id);
    if (!r) return;
    const delay = restartDelay(r.hostConfig.RestartPolicy, { code, ranMs: finished - (r.started ?? finished) }, { restartCount: r.restart_count, manuallyStopped: !!r.manually_stopped, lastDelayMs: this.restartDelays.get(id) });
    if (delay === null) records.markExited(id, code, finished);
    else records.markRestarting(id, code, finished);
    this.parts.event(r, 'die', { exitCode: String(code), execDuration: String(Math.max(0, Math.floor((finished - (r.started ?? finished)) / 1000))) });
    mounts.stopped(id);
    this.transitions.emit(`exit:${id}`, code);
    if (delay === null) networks.stopped(id);
    if (delay !== null) {
      this.restartDelays.set(id, delay);
      this.pendingRestarts.set(id, setTimeout(() => void this.policyRestart(id), delay).unref());
    } else if (r.hostConfig.AutoRemove) {
      await this.parts.autoRemove(id).catch(() => undefined);
    }
  }

  /** The restart a policy scheduled (unless a stop or rm came first). */
  private async policyRestart(id: string): Promise<void> {
    clearTimeout(this.pendingRestarts.get(id));
    this.pendingRestarts.delete(id);
    const r = this.parts.records.get(id);
    if (!r || r.state !== 'restarting') return;
    await this.run(id).catch(() => this.stayExited(id, r.exit_code ?? 255, Date.now()));
  }

  /** A restarting container whose next start is called off: it stays exited. */
  cancelRestart(id: string): void {
    clearTimeout(this.pendingRestarts.get(id));
    this.pendingRestarts.delete(id);
    const r = this.parts.records.get(id);
    if (r?.state === 'restarting') this.stayExited(id, r.exit_code ?? 0, r.finished ?? Date.now());
  }

  /** A container on its way out: no restart pending, no back-off remembered. */
  removing(id: string): void {
    this.cancelRestart(id);
    this.restartDelays.delete(id);
  }

  /** Its record is gone: waiters for its removal hear its last exit code. */
  removed(id: string, code: number): void {
    this.transitions.emit(`removed:${id}`, code);
  }

  /** The end of a restart cycle: exited for good, its published ports freed. */
  private stayExited(id: string, code: number, finished: number): void {
    this.parts.records.markExited(id, code, finished);
    this.parts.networks.stopped(id);
  }

  /** Resolves the condition's exit code. */
  wait(r: ContainerRecord, condition: WaitCondition, signal?: AbortSignal): Promise<number> {
    const event = condition === 'removed' ? `removed:${r.id}` : `exit:${r.id}`;
    // as dockerd: a restarting or paused container counts as running
    if (condition === 'not-running' && !['running', 'restarting', 'paused'].includes(r.state)) return Promise.resolve(r.exit_code ?? 0);
    return new Promise<number>((resolve, reject) => {
      const on = (code: number) => resolve(code);
      this.transitions.once(event, on);
      signal?.addEventListener('abort', () => {
        this.transitions.off(event, on);
        reject(new KrError('unavailable', 'client went away'));
      });
    });
  }
}

/**
 * SIGKILL, repeated every second until the exit is seen: a signal frame that does not reach the
 * supervisor (a connection refused under load) must not leave `rm -f` or `stop` waiting forever.
 */
export async function killUntilExited(c: { kill(signal: string): Promise<void> }, exited: Promise<unknown>): Promise<void> {
  let done = false;
  void exited.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 30 && !done; i++) {
    await c.kill('SIGKILL').catch(() => undefined);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
