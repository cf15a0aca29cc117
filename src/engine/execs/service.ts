// The exec service: `docker exec` as dockerd does it. Create records the ExecConfig (a row of
// the execs table) against a running container; start runs it through the runtime's
// Container.exec, records its pid and, once it has exited, its exit code, which inspect reports.
import { randomBytes } from 'node:crypto';
import { KrError } from '../../util/errors.ts';
import type { Runtime, RuntimeProcess, Stdio } from '../../runtime/runtime.ts';
import type { StateDb } from '../state/db.ts';
import type { ContainerService } from '../containers/service.ts';
import { parseDetachKeys } from '../containers/detach-keys.ts';

/** docker's ExecConfig as stored (the fields krd uses). */
export interface ExecConfig {
  User: string;
  Tty: boolean;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  Env: string[];
  WorkingDir: string;
  Cmd: string[];
  DetachKeys: string;
  /** [rows, cols] to apply once started (with a tty). */
  ConsoleSize: [number, number] | null;
}

interface ExecRow {
  id: string;
  container_id: string;
  config: string;
  running: number;
  exit_code: number | null;
  pid: number | null;
}

export interface ExecRecord {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  exitCode: number | null;
  pid: number | null;
}

function fromRow(r: ExecRow): ExecRecord {
  return { id: r.id, containerId: r.container_id, config: JSON.parse(r.config) as ExecConfig, running: r.running === 1, exitCode: r.exit_code, pid: r.pid };
}

function field<T>(o: Record<string, unknown>, k: string, type: 'string' | 'boolean', dflt: T): T {
  const v = o[k];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== type) throw new KrError('invalid', `${k} must be a ${type}`);
  return v as T;
}

function list(o: Record<string, unknown>, k: string): string[] | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new KrError('invalid', `${k} must be a list of strings`);
  return v as string[];
}

function consoleSize(o: Record<string, unknown>): [number, number] | null {
  const v = o.ConsoleSize;
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length !== 2 || !v.every((n) => Number.isInteger(n) && n >= 0)) throw new KrError('invalid', 'ConsoleSize must be [height, width]');
  return v[0] > 0 && v[1] > 0 ? [v[0], v[1]] : null;
}

/** Checked now so a bad sequence fails at create, as with dockerd. */
function detachKeys(spec: string): string {
  if (spec) parseDetachKeys(spec);
  return spec;
}

/** The exec's body checked; Env, User and WorkingDir fall back to the container's as dockerd does. */
export function parseExecConfig(body: unknown): ExecConfig {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new KrError('invalid', 'request body must be an object');
  const b = body as Record<string, unknown>;
  const cmd = list(b, 'Cmd') ?? [];
  if (cmd.length === 0) throw new KrError('invalid', 'No exec command specified');
  const workdir = field<string>(b, 'WorkingDir', 'string', '');
  if (workdir && !workdir.startsWith('/')) throw new KrError('invalid', `the working directory '${workdir}' is invalid, it needs to be an absolute path`);
  return {
    User: field<string>(b, 'User', 'string', ''),
    Tty: field<boolean>(b, 'Tty', 'boolean', false),
    AttachStdin: field<boolean>(b, 'AttachStdin', 'boolean', false),
    AttachStdout: field<boolean>(b, 'AttachStdout', 'boolean', false),
    AttachStderr: field<boolean>(b, 'AttachStderr', 'boolean', false),
    Env: list(b, 'Env') ?? [],
    WorkingDir: workdir,
    Cmd: cmd,
    DetachKeys: detachKeys(field<string>(b, 'DetachKeys', 'string', '')),
    ConsoleSize: consoleSize(b),
  };
}

/** Container env, TERM with a tty, then the exec's own: a KEY set twice takes the later value. */
function execEnv(container: string[], tty: boolean, own: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...container, ...(tty ? ['TERM=xterm'] : []), ...own]) out.set(e.split('=')[0], e);
  return [...out.values()];
}

export interface StartedExec {
  tty: boolean;
  config: ExecConfig;
  stdio: Stdio;
  /** Resolves with the exit code once it is recorded (so inspect sees it). */
  exited: Promise<number>;
}

export class ExecService {
  private readonly state: StateDb;
  private readonly containers: ContainerService;
  private readonly runtime: Runtime;
  /** Execs started by this krd: their processes (for resize) once started. */
  private readonly live = new Map<string, Promise<RuntimeProcess | null>>();

  constructor(state: StateDb, containers: ContainerService, runtime: Runtime) {
    this.state = state;
    this.containers = containers;
    this.runtime = runtime;
  }

  /**
   * After a krd restart: the execs that were running when the old krd died are found again
   * through the runtime, and their exit codes recorded when they end (or at once if they did).
   */
  async recover(): Promise<void> {
    const rows = (this.state.db.prepare('SELECT * FROM execs WHERE running = 1').all() as unknown as ExecRow[]).map(fromRow);
    for (const e of rows) {
      const p = await this.runtime
        .reattach(e.containerId)
        .then((c) => c.execProcess(e.id))
        .catch(() => null);
      if (!p) {
        // its state is gone with its container: nothing can say how it ended
        this.state.db.prepare('UPDATE execs SET running = 0 WHERE id = ?').run(e.id);
        continue;
      }
      this.live.set(e.id, Promise.resolve(p));
      void p
        .wait()
        .then((x) => x.exitCode, () => 255)
        .then((code) => {
          this.state.db.prepare('UPDATE execs SET running = 0, exit_code = ? WHERE id = ?').run(code, e.id);
          this.live.delete(e.id);
          const c = this.containers.records.get(e.containerId);
          if (c) this.containers.event(c, 'exec_die', { execID: e.id, exitCode: String(code) });
        });
    }
  }

  private row(id: string): ExecRecord {
    const r = this.state.db.prepare('SELECT * FROM execs WHERE id = ?').get(id) as ExecRow | undefined;
    if (!r) throw new KrError('not-found', `No such exec instance: ${id}`);
    return fromRow(r);
  }

  create(ref: string, body: unknown): { Id: string } {
    const c = this.containers.resolve(ref);
    const config = parseExecConfig(body);
    if (c.state === 'paused') throw new KrError('conflict', `Container ${c.id} is paused, unpause the container before exec`);
    if (c.state !== 'running') throw new KrError('conflict', `container ${c.id} is not running`);
    const id = randomBytes(32).toString('hex');
    this.state.db.prepare('INSERT INTO execs (id, container_id, config) VALUES (?, ?, ?)').run(id, c.id, JSON.stringify(config));
    this.containers.event(c, `exec_create: ${config.Cmd.join(' ')}`, { execID: id });
    return { Id: id };
  }

  /** Runs the exec; its streams are connected before it starts, so no output is missed. */
  async start(id: string): Promise<StartedExec> {
    const e = this.row(id);
    if (e.running || this.live.has(id)) throw new KrError('conflict', `Error: Exec command ${id} is already running`);
    if (e.exitCode !== null) throw new KrError('conflict', `Error: Exec command ${id} has already run`);
    let settle!: (p: RuntimeProcess | null) => void;
    this.live.set(id, new Promise((r) => (settle = r)));
    try {
      const c = this.containers.records.get(e.containerId);
      if (!c) throw new KrError('not-found', `No such container: ${e.containerId}`);
      if (c.state !== 'running') throw new KrError('conflict', `container ${c.id} is not running`);
      const container = await this.runtime.reattach(c.id);
      const cfg = e.config;
      const p = await container.exec(id, {
        args: cfg.Cmd,
        env: execEnv(c.config.Env, cfg.Tty, cfg.Env),
        cwd: cfg.WorkingDir || c.config.WorkingDir || '/',
        user: cfg.User || c.config.User || undefined,
        tty: cfg.Tty,
        openStdin: cfg.AttachStdin,
      });
      const stdio = await p.attach();
      await p.start();
      const st = await p.state();
      this.state.db.prepare('UPDATE execs SET running = 1, pid = ? WHERE id = ?').run(st.pid ?? null, id);
      settle(p);
      this.containers.event(c, `exec_start: ${cfg.Cmd.join(' ')}`, { execID: id });
      if (cfg.Tty && cfg.ConsoleSize) await p.resize(cfg.ConsoleSize[0], cfg.ConsoleSize[1]).catch(() => undefined);
      const exited = p
        .wait()
        .then((x) => x.exitCode, () => 255)
        .then((code) => {
          this.state.db.prepare('UPDATE execs SET running = 0, exit_code = ? WHERE id = ?').run(code, id);
          this.live.delete(id);
          this.containers.event(c, 'exec_die', { execID: id, exitCode: String(code) });
          return code;
        });
      return { tty: cfg.Tty, config: cfg, stdio, exited };
    } catch (err) {
      settle(null);
      this.live.delete(id);
      throw err;
    }
  }

  /** Waits (10 s at most, as dockerd) for the exec to have started; a finished one is left alone. */
  async resize(id: string, rows: number, cols: number): Promise<void> {
    const e = this.row(id);
    const starting = this.live.get(id);
    if (!starting) {
      if (e.exitCode !== null) return;
      throw new KrError('conflict', `Exec ${id} is not running`);
    }
    let timer: NodeJS.Timeout | undefined;
    const p = await Promise.race([starting, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 10_000)))]);
    clearTimeout(timer);
    if (p === undefined) throw new KrError('unavailable', 'timeout waiting for exec session ready');
    await p?.resize(rows, cols).catch(() => undefined);
  }

  /** docker's ExecInspect. */
  inspect(id: string): object {
    const e = this.row(id);
    const [entrypoint, ...args] = e.config.Cmd;
    return {
      ID: e.id,
      Running: e.running,
      ExitCode: e.exitCode,
      ProcessConfig: { tty: e.config.Tty, entrypoint, arguments: args, privileged: false, ...(e.config.User ? { user: e.config.User } : {}) },
      OpenStdin: e.config.AttachStdin,
      OpenStderr: e.config.AttachStderr,
      OpenStdout: e.config.AttachStdout,
      CanRemove: false,
      ContainerID: e.containerId,
      DetachKeys: e.config.DetachKeys,
      Pid: e.pid ?? 0,
    };
  }
}
