// Volume records (the `volumes` table) and the container mounts that name them
// (`container_mounts`): a volume is in use while some container's mount row names it.
import type { StateDb } from '../state/db.ts';

export interface VolumeRecord {
  name: string;
  driver: string;
  mountpoint: string;
  /** Unix ms. */
  created: number;
  labels: Record<string, string>;
  options: Record<string, string>;
}

/** One mount of a container, as docker's inspect lists it (MountPoint). */
export interface MountRecord {
  type: 'volume' | 'bind' | 'tmpfs';
  /** The volume's name (type volume). */
  name?: string;
  source: string;
  destination: string;
  driver?: string;
  mode: string;
  rw: boolean;
  propagation: string;
}

interface VolumeRow {
  name: string;
  driver: string;
  mountpoint: string;
  created: number;
  labels: string;
  options: string;
}

interface MountRow {
  type: MountRecord['type'];
  name: string | null;
  source: string;
  destination: string;
  driver: string | null;
  mode: string;
  rw: number;
  propagation: string;
}

const volume = (r: VolumeRow): VolumeRecord => ({ ...r, created: Number(r.created), labels: JSON.parse(r.labels), options: JSON.parse(r.options) });

export class VolumeRecords {
  private readonly state: StateDb;

  constructor(state: StateDb) {
    this.state = state;
  }

  /** false when the name is taken. */
  insert(v: VolumeRecord): boolean {
    const r = this.state.db
      .prepare('INSERT OR IGNORE INTO volumes (name, driver, mountpoint, created, labels, options) VALUES (?, ?, ?, ?, ?, ?)')
      .run(v.name, v.driver, v.mountpoint, v.created, JSON.stringify(v.labels), JSON.stringify(v.options));
    return Number(r.changes) === 1;
  }

  get(name: string): VolumeRecord | undefined {
    const row = this.state.db.prepare('SELECT * FROM volumes WHERE name = ?').get(name) as VolumeRow | undefined;
    return row && volume(row);
  }

  all(): VolumeRecord[] {
    return (this.state.db.prepare('SELECT * FROM volumes ORDER BY name').all() as unknown as VolumeRow[]).map(volume);
  }

  remove(name: string): void {
    this.state.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
  }

  /** IDs of the containers whose mounts name the volume. */
  users(name: string): string[] {
    return (this.state.db.prepare('SELECT DISTINCT container_id FROM container_mounts WHERE name = ? ORDER BY container_id').all(name) as { container_id: string }[]).map((r) => r.container_id);
  }

  /** Names of every volume some container mounts. */
  usedNames(): Set<string> {
    return new Set((this.state.db.prepare('SELECT DISTINCT name FROM container_mounts WHERE name IS NOT NULL').all() as { name: string }[]).map((r) => r.name));
  }

  insertMounts(containerId: string, mounts: MountRecord[]): void {
    const st = this.state.db.prepare('INSERT INTO container_mounts (container_id, position, type, name, source, destination, driver, mode, rw, propagation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.state.transaction(() => {
      mounts.forEach((m, i) => st.run(containerId, i, m.type, m.name ?? null, m.source, m.destination, m.driver ?? null, m.mode, m.rw ? 1 : 0, m.propagation));
    });
  }

  mountsOf(containerId: string): MountRecord[] {
    const rows = this.state.db.prepare('SELECT * FROM container_mounts WHERE container_id = ? ORDER BY position').all(containerId) as unknown as MountRow[];
    return rows.map((r) => ({
      type: r.type,
      ...(r.name !== null ? { name: r.name } : {}),
      source: r.source,
      destination: r.destination,
      ...(r.driver !== null ? { driver: r.driver } : {}),
      mode: r.mode,
      rw: r.rw === 1,
      propagation: r.propagation,
    }));
  }
}
