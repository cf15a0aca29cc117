// Healthchecks as dockerd runs them: while a container runs, its probe runs through the runtime's
// exec every Interval (StartInterval while still starting inside StartPeriod), each result kept
// in State.Health (last 5 in Log, FailingStreak) in the state database, so inspect and ps see it
// and a restarted krd resumes from it. Status: starting → healthy after a success; unhealthy once
// Retries probes in a row failed (failures inside StartPeriod do not count until a first success).
// A change of status is a `health_status: …` event. Probes start on the container's start event
// and stop on its die/destroy, so every way of starting (run, start, restart policies) is covered.
import { randomBytes } from 'node:crypto';
import type { Runtime } from '../../runtime/runtime.ts';
import type { ContainerService } from '../containers/service.ts';
import type { ContainerRecord } from '../containers/records.ts';
import type { EventService } from '../events/service.ts';
import { DEFAULTS, probeCommand, type Healthcheck } from './config.ts';
import { sleep } from '../../util/sleep.ts';

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** docker's State.Health. */
export interface Health {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthLogEntry[];
}

const MAX_OUTPUT = 4096; // dockerd keeps this much of a probe's output
const MAX_LOG = 5;

export class HealthMonitor {
  private readonly containers: ContainerService;
  private readonly runtime: Runtime;
  private readonly bus: EventService;
  /** Running monitors: aborting one stops its loop (and a probe under way). */
  private readonly loops = new Map<string, AbortController>();
  private unsubscribe: (() => void) | null = null;

  constructor(containers: ContainerService, runtime: Runtime, bus: EventService) {
    this.containers = containers;
    this.runtime = runtime;
    this.bus = bus;
  }

  /** Follows container starts and stops from now on, and resumes the checks of running containers. */
  open(): void {
    const filters = new Map([['type', ['container']], ['event', ['start', 'die', 'destroy']]]);
    this.unsubscribe = this.bus.subscribe({ filters }, (e) => {
      if (e.Action === 'start') this.begin(e.Actor.ID, true);
      else this.end(e.Actor.ID);
    }).unsubscribe;
    for (const r of this.containers.records.all()) if (r.state === 'running') this.begin(r.id, false);
  }

  close(): void {
    this.unsubscribe?.();
    for (const id of [...this.loops.keys()]) this.end(id);
  }

  private begin(id: string, fresh: boolean): void {
    const r = this.containers.records.get(id);
    const hc = r?.config.Healthcheck as Healthcheck | undefined;
    const cmd = probeCommand(hc);
    if (!r || !hc || !cmd) return;
    this.end(id);
    // a (re)start begins again at "starting"; after a krd restart the kept state goes on
    if (fresh || !r.health) this.containers.records.setHealth(id, { Status: 'starting', FailingStreak: 0, Log: parseHealth(r.health)?.Log ?? [] });
    const abort = new AbortController();
    this.loops.set(id, abort);
    void this.loop(id, hc, cmd, abort.signal).catch(() => undefined).finally(() => {
      if (this.loops.get(id) === abort) this.loops.delete(id);
    });
  }

  private end(id: string): void {
    this.loops.get(id)?.abort();
    this.loops.delete(id);
  }

  private async loop(id: string, hc: Healthcheck, cmd: string[], signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const r = this.containers.records.get(id);
      if (!r || r.state !== 'running') return;
      const health = parseHealth(r.health);
      const inStart = Date.now() - (r.started ?? 0) < (hc.StartPeriod || DEFAULTS.StartPeriod) / 1e6;
      const interval = health?.Status === 'starting' && inStart && hc.StartInterval ? hc.StartInterval : hc.Interval || DEFAULTS.Interval;
      await sleep(interval / 1e6, signal);
      if (signal.aborted) return;
      const entry = await this.probe(r, hc, cmd, signal);
      if (signal.aborted) return;
      this.record(id, hc, entry);
    }
  }

  /** One probe through the runtime's exec: its output (4 KiB at most) and exit code, or a timeout. */
  private async probe(r: ContainerRecord, hc: Healthcheck, cmd: string[], signal: AbortSignal): Promise<HealthLogEntry> {
    const start = new Date();
    const timeoutMs = (hc.Timeout || DEFAULTS.Timeout) / 1e6;
    const done = (code: number, output: string): HealthLogEntry => ({ Start: start.toISOString(), End: new Date().toISOString(), ExitCode: code, Output: output });
    let proc;
    try {
      const c = await this.runtime.reattach(r.id);
      proc = await c.exec(`health-${randomBytes(8).toString('hex')}`, { args: cmd, env: r.config.Env, cwd: r.config.WorkingDir || '/', user: r.config.User || undefined });
    } catch (err) {
      return done(-1, `failed to run the health check: ${(err as Error).message}`);
    }
    try {
      const io = await proc.attach();
      let output = '';
      const take = (d: Buffer) => {
        if (output.length < MAX_OUTPUT) output = (output + d.toString()).slice(0, MAX_OUTPUT);
      };
      io.stdout.on('data', take);
      io.stderr?.on('data', take);
      await proc.start();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), timeoutMs)));
      const aborted = new Promise<'abort'>((res) => signal.addEventListener('abort', () => res('abort'), { once: true }));
      const exit = await Promise.race([proc.wait(), timedOut, aborted]);
      clearTimeout(timer);
      if (exit === 'timeout' || exit === 'abort') {
        await proc.kill('SIGKILL').catch(() => undefined);
        return done(-1, exit === 'timeout' ? `Health check exceeded timeout (${formatSeconds(timeoutMs)})` : 'health check stopped');
      }
      return done(exit.exitCode, output);
    } catch (err) {
      return done(-1, (err as Error).message);
    } finally {
      const p = proc;
      void p.wait().then(() => p.delete(), () => p.delete()).catch(() => undefined);
    }
  }

  private record(id: string, hc: Healthcheck, entry: HealthLogEntry): void {
    const r = this.containers.records.get(id);
    if (!r || r.state !== 'running') return;
    const before = parseHealth(r.health) ?? { Status: 'starting' as HealthStatus, FailingStreak: 0, Log: [] };
    const h: Health = { ...before, Log: [...before.Log, entry].slice(-MAX_LOG) };
    if (entry.ExitCode === 0) {
      h.Status = 'healthy';
      h.FailingStreak = 0;
    } else {
      const inStart = before.Status === 'starting' && Date.parse(entry.Start) - (r.started ?? 0) < (hc.StartPeriod || DEFAULTS.StartPeriod) / 1e6;
      if (!inStart) {
        h.FailingStreak++;
        if (h.FailingStreak >= (hc.Retries || DEFAULTS.Retries)) h.Status = 'unhealthy';
      }
    }
    this.containers.records.setHealth(id, h);
    if (h.Status !== before.Status) this.containers.event(r, `health_status: ${h.Status}`);
  }
}

export function parseHealth(text: string | null | undefined): Health | undefined {
  return text ? (JSON.parse(text) as Health) : undefined;
}

/** Go's time.Duration String for whole and fractional seconds ("30s", "1.5s", "500ms"). */
function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${ms / 1000}s`;
}
