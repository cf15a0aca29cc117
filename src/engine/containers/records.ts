// Container records in the state database: one row per container, written (and committed)
// before the API answers, so a restarted krd lists what the old one had.
import type { StateDb } from '../state/db.ts';
import type { ContainerConfig, HostConfig } from './config.ts';

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead';

export interface ContainerRow {
  id: string;
  name: string;
  image_id: string;
  image_ref: string;
  state: ContainerState;
  created: number;
  started: number | null;
  finished: number | null;
  exit_code: number | null;
  pid: number | null;
  runtime: string;
  config: string;
  host_config: string;
  /** JSON of docker's State.Health (health/monitor.ts), null without a healthcheck. */
  health?: string | null;
  restart_count: number;
  /** 1 once docker stop (or a kill with SIGKILL / the stop signal) ended it: no policy restarts. */
  manually_stopped: number;
}

/** A row with its JSON columns parsed. */
export interface ContainerRecord extends Omit<ContainerRow, 'config' | 'host_config'> {
  config: ContainerConfig;
  hostConfig: HostConfig;
}

export type NewContainer = Pick<ContainerRecord, 'id' | 'name' | 'image_id' | 'image_ref' | 'runtime' | 'config' | 'hostConfig'> & { created?: number };

function parse(row: ContainerRow): ContainerRecord {
  const { config, host_config, ...rest } = row;
  return { ...rest, config: JSON.parse(config) as ContainerConfig, hostConfig: JSON.parse(host_config) as HostConfig };
}

export class ContainerRecords {
  private readonly state: StateDb;

  constructor(state: StateDb) {
    this.state = state;
  }

  /** A new container, in state 'created' (created now unless given); the run-time columns start empty. */
  insert(r: NewContainer): void {
    this.state.db
      .prepare("INSERT INTO containers (id, name, image_id, image_ref, state, created, runtime, config, host_config) VALUES (?, ?, ?, ?, 'created', ?, ?, ?, ?)")
      .run(r.id, r.name, r.image_id, r.image_ref, r.created ?? Date.now(), r.runtime, JSON.stringify(r.config), JSON.stringify(r.hostConfig));
  }

  get(id: string): ContainerRecord | undefined {
    const row = this.state.db.prepare('SELECT * FROM containers WHERE id = ?').get(id) as ContainerRow | undefined;
    return row && parse(row);
  }

  byName(name: string): ContainerRecord | undefined {
    const row = this.state.db.prepare('SELECT * FROM containers WHERE name = ?').get(name) as ContainerRow | undefined;
    return row && parse(row);
  }

  byPrefix(prefix: string): string[] {
    return (this.state.db.prepare('SELECT id FROM containers WHERE id LIKE ?').all(`${prefix}%`) as { id: string }[]).map((r) => r.id);
  }

  all(): ContainerRecord[] {
    return (this.state.db.prepare('SELECT * FROM containers ORDER BY created DESC').all() as unknown as ContainerRow[]).map(parse);
  }

  markRunning(id: string, pid: number | null, started: number): void {
    this.state.db.prepare("UPDATE containers SET state = 'running', pid = ?, started = ?, finished = NULL, exit_code = NULL WHERE id = ?").run(pid, started, id);
  }

  markExited(id: string, exitCode: number, finished: number): void {
    this.state.db.prepare("UPDATE containers SET state = 'exited', pid = NULL, exit_code = ?, finished = ? WHERE id = ?").run(exitCode, finished, id);
  }

  setHealth(id: string, health: object): void {
    this.state.db.prepare('UPDATE containers SET health = ? WHERE id = ?').run(JSON.stringify(health), id);
  }

  /** Exited, to be started again by its restart policy: one more restart counted. */
  markRestarting(id: string, exitCode: number, finished: number): void {
    this.state.db.prepare("UPDATE containers SET state = 'restarting', pid = NULL, exit_code = ?, finished = ?, restart_count = restart_count + 1 WHERE id = ?").run(exitCode, finished, id);
  }

  /** running ⇄ paused. */
  setPaused(id: string, paused: boolean): void {
    this.state.db.prepare('UPDATE containers SET state = ? WHERE id = ?').run(paused ? 'paused' : 'running', id);
  }

  setManuallyStopped(id: string, stopped: boolean): void {
    this.state.db.prepare('UPDATE containers SET manually_stopped = ? WHERE id = ?').run(stopped ? 1 : 0, id);
  }

  /** A start asked for by the user (or krd coming up): the policy counts from zero again. */
  resetRestarts(id: string): void {
    this.state.db.prepare('UPDATE containers SET restart_count = 0, manually_stopped = 0 WHERE id = ?').run(id);
  }

  /** docker update: the limits and restart policy, as inspect shows them from now on. */
  setHostConfig(id: string, hostConfig: HostConfig): void {
    this.state.db.prepare('UPDATE containers SET host_config = ? WHERE id = ?').run(JSON.stringify(hostConfig), id);
  }

  rename(id: string, name: string): void {
    this.state.db.prepare('UPDATE containers SET name = ? WHERE id = ?').run(name, id);
  }

  remove(id: string): void {
    this.state.db.prepare('DELETE FROM containers WHERE id = ?').run(id);
  }
}
