// The volume service behind /volumes: records in the state database, storage in a driver
// (./driver.ts: `local` now; lv and gfs later). Containers reach volumes through
// ./container-mounts.ts, which asks this service to create, mount and release them.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KrError, isKrError } from '../../util/errors.ts';
import type { EventService } from '../events/service.ts';
import type { StateDb } from '../state/db.ts';
import type { MountTarget, VolumeDriver } from './driver.ts';
import { LocalDriver } from './local-driver.ts';
import { checkVolumeName } from './names.ts';
import { VolumeRecords, type VolumeRecord } from './records.ts';

/** The label docker puts on the volumes it makes for `-v /path` and image VOLUMEs. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';
const LIST_FILTERS = new Set(['name', 'driver', 'label', 'dangling']);
const PRUNE_FILTERS = new Set(['label', 'label!', 'all']);

export interface CreateVolume {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string>;
  Labels?: Record<string, string>;
}

function stringMap(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) throw new KrError('invalid', `${what} must be an object of strings`);
  return { ...(v as Record<string, string>) };
}

/** The body of POST /volumes/create, checked. */
export function parseCreateVolume(body: unknown): CreateVolume {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new KrError('invalid', 'request body must be an object');
  const b = body as Record<string, unknown>;
  for (const k of ['Name', 'Driver'] as const) if (b[k] !== undefined && b[k] !== null && typeof b[k] !== 'string') throw new KrError('invalid', `${k} must be a string`);
  return { Name: (b.Name as string) || undefined, Driver: (b.Driver as string) || undefined, DriverOpts: stringMap(b.DriverOpts, 'DriverOpts'), Labels: stringMap(b.Labels, 'Labels') };
}

function labelMatch(labels: Record<string, string>, v: string): boolean {
  const eq = v.indexOf('=');
  return eq < 0 ? v in labels : labels[v.slice(0, eq)] === v.slice(eq + 1);
}

function boolFilter(key: string, values: string[]): boolean {
  const v = values[values.length - 1]?.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new KrError('invalid', `invalid filter '${key}=${values[values.length - 1]}'`);
}

/** docker's volume JSON (GET /volumes/{name}, list entries). */
export function volumeView(v: VolumeRecord, scope: string, usage?: { size: number; refCount: number }): object {
  const empty = (o: Record<string, string>) => (Object.keys(o).length === 0 ? null : o);
  return {
    CreatedAt: new Date(v.created).toISOString().replace(/\.\d+Z$/, 'Z'),
    Driver: v.driver,
    Labels: empty(v.labels),
    Mountpoint: v.mountpoint,
    Name: v.name,
    Options: empty(v.options),
    Scope: scope,
    ...(usage ? { UsageData: { Size: usage.size, RefCount: usage.refCount } } : {}),
  };
}

export class VolumeService {
  readonly records: VolumeRecords;
  private readonly drivers = new Map<string, VolumeDriver>();
  private readonly bus: EventService;
  /** Creations in flight by name: two containers asking for the same new volume get one. */
  private readonly creating = new Map<string, Promise<{ volume: VolumeRecord; created: boolean }>>();

  constructor(state: StateDb, dataRoot: string, bus: EventService) {
    this.records = new VolumeRecords(state);
    this.bus = bus;
    const local = new LocalDriver(join(dataRoot, 'volumes'));
    this.drivers.set(local.name, local);
  }

  driver(name: string): VolumeDriver {
    const d = this.drivers.get(name);
    if (!d) throw new KrError('not-found', `error looking up volume plugin ${name}: plugin "${name}" not found`);
    return d;
  }

  private publish(action: string, v: VolumeRecord, extra: Record<string, string> = {}): void {
    this.bus.publish('volume', action, v.name, { driver: v.driver, ...extra });
  }

  view(v: VolumeRecord, usage?: { size: number; refCount: number }): object {
    return volumeView(v, this.drivers.get(v.driver)?.capabilities().scope ?? 'local', usage);
  }

  /** Creates the volume, or returns the one of that name (docker's create is idempotent). */
  create(req: CreateVolume, extraLabels: Record<string, string> = {}): Promise<{ volume: VolumeRecord; created: boolean }> {
    const name = req.Name ?? randomBytes(32).toString('hex');
    checkVolumeName(name);
    const driverName = req.Driver || 'local';
    const existing = this.records.get(name);
    if (existing) {
      if (req.Driver && existing.driver !== req.Driver) throw new KrError('conflict', `create ${name}: a volume with the name ${name} already exists with driver "${existing.driver}"`);
      return Promise.resolve({ volume: existing, created: false });
    }
    const driver = this.driver(driverName);
    const options = req.DriverOpts ?? {};
    try {
      driver.checkOptions(options);
    } catch (err) {
      throw isKrError(err) ? new KrError(err.kind, `create ${name}: ${err.message}`) : err;
    }
    let p = this.creating.get(name);
    if (!p) {
      p = (async () => {
        const { mountpoint } = await driver.create(name, options);
        const volume: VolumeRecord = { name, driver: driverName, mountpoint, created: Date.now(), labels: { ...(req.Labels ?? {}), ...extraLabels }, options };
        if (!this.records.insert(volume)) return { volume: this.records.get(name)!, created: false };
        this.publish('create', volume);
        return { volume, created: true };
      })().finally(() => this.creating.delete(name));
      this.creating.set(name, p);
    }
    return p;
  }

  get(name: string): VolumeRecord {
    const v = this.records.get(name);
    if (!v) throw new KrError('not-found', `get ${name}: no such volume`);
    return v;
  }

  list(filters: Map<string, string[]>): { Volumes: object[]; Warnings: string[] } {
    for (const k of filters.keys()) if (!LIST_FILTERS.has(k)) throw new KrError('invalid', `invalid filter '${k}'`);
    const dangling = filters.has('dangling') ? boolFilter('dangling', filters.get('dangling')!) : undefined;
    const used = this.records.usedNames();
    const out = this.records.all().filter((v) => {
      const any = (key: string, pred: (x: string) => boolean) => !filters.get(key)?.length || filters.get(key)!.some(pred);
      if (!any('name', (x) => v.name.includes(x) || safeRegExp(x)?.test(v.name) === true)) return false;
      if (!any('driver', (x) => v.driver === x)) return false;
      if (!(filters.get('label') ?? []).every((x) => labelMatch(v.labels, x))) return false;
      if (dangling !== undefined && dangling === used.has(v.name)) return false;
      return true;
    });
    return { Volumes: out.map((v) => this.view(v)), Warnings: [] };
  }

  /** docker's 409 while any container (running or not) has it mounted. */
  async remove(name: string, force: boolean): Promise<void> {
    const v = this.records.get(name);
    if (!v) {
      if (force) return;
      throw new KrError('not-found', `get ${name}: no such volume`);
    }
    const users = this.records.users(name);
    if (users.length > 0) throw new KrError('conflict', `remove ${name}: volume is in use - [${users.join(' ')}]`);
    await this.destroy(v);
  }

  private async destroy(v: VolumeRecord): Promise<void> {
    await this.drivers.get(v.driver)?.remove(v.name, v.options);
    this.records.remove(v.name);
    this.publish('destroy', v);
  }

  /** Unused volumes: anonymous ones only, unless the filter all=true (docker ≥ 1.42). */
  async prune(filters: Map<string, string[]>): Promise<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }> {
    for (const k of filters.keys()) if (!PRUNE_FILTERS.has(k)) throw new KrError('invalid', `invalid filter '${k}'`);
    const all = filters.has('all') ? boolFilter('all', filters.get('all')!) : false;
    const used = this.records.usedNames();
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const v of this.records.all()) {
      if (used.has(v.name)) continue;
      if (!all && !(ANONYMOUS_LABEL in v.labels)) continue;
      if (!(filters.get('label') ?? []).every((x) => labelMatch(v.labels, x))) continue;
      if ((filters.get('label!') ?? []).some((x) => labelMatch(v.labels, x))) continue;
      const size = await this.size(v);
      await this.destroy(v).then(
        () => {
          deleted.push(v.name);
          reclaimed += Math.max(0, size);
        },
        () => undefined, // a volume that will not go stays listed; the others still go
      );
    }
    return { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  size(v: VolumeRecord): Promise<number> {
    return this.drivers.get(v.driver)?.size(v.name, v.options).catch(() => -1) ?? Promise.resolve(-1);
  }

  /** Every volume with docker's UsageData (for GET /system/df). */
  async usage(): Promise<object[]> {
    return Promise.all(this.records.all().map(async (v) => this.view(v, { size: await this.size(v), refCount: this.records.users(v.name).length })));
  }

  /** Ready for container `user`; returns what the runtime binds. */
  mount(v: VolumeRecord, user: string): Promise<MountTarget> {
    return this.driver(v.driver).mount(v.name, v.options, user);
  }

  /** Container `user` no longer holds it (its mount rows are gone already). */
  async unmount(name: string, user: string): Promise<void> {
    const v = this.records.get(name);
    if (!v) return;
    await this.drivers.get(v.driver)?.unmount(v.name, v.options, user, this.records.users(name).length === 0);
  }

  /** Removes an anonymous volume no container uses any more (docker rm -v, --rm). */
  async removeIfAnonymousAndUnused(name: string): Promise<void> {
    const v = this.records.get(name);
    if (!v || !(ANONYMOUS_LABEL in v.labels) || this.records.users(name).length > 0) return;
    await this.destroy(v);
  }

  /** A volume event about a container's use of it (mount, unmount). */
  containerEvent(action: 'mount' | 'unmount', name: string, attrs: Record<string, string>): void {
    const v = this.records.get(name);
    if (v) this.publish(action, v, attrs);
  }
}

function safeRegExp(s: string): RegExp | undefined {
  try {
    return new RegExp(s);
  } catch {
    return undefined;
  }
}
