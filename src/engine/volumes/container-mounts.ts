// What a container's mounts need from the volume service, in a container's life order:
// prepare (create named volumes on first use and anonymous ones, mount them, make missing
// `-v` host dirs) → the runtime binds them → commit (rows that mark the volumes in use) →
// started / stopped (docker's mount and unmount volume events) → released when the container
// goes (driver unmount; its anonymous volumes removed with `rm -v` and `--rm`).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { KrError, withContext } from '../../util/errors.ts';
import type { MountSpec } from '../../runtime/runtime.ts';
import type { MountRequest } from './mount-specs.ts';
import type { StateDb } from '../state/db.ts';
import { VolumeRecords, type MountRecord } from './records.ts';
import { ANONYMOUS_LABEL, type VolumeService } from './service.ts';

export interface PreparedMounts {
  specs: MountSpec[];
  records: MountRecord[];
  /** Undoes prepare (the container could not be created): volumes it made go again. */
  undo(): Promise<void>;
}

export class ContainerMounts {
  private readonly records: VolumeRecords;
  /** null where containers get no volumes (vdocker inside a pod: the host owns them). */
  private readonly volumeService: VolumeService | null;

  constructor(state: StateDb, volumes: VolumeService | null) {
    this.records = new VolumeRecords(state);
    this.volumeService = volumes;
  }

  private get volumes(): VolumeService {
    if (!this.volumeService) throw new KrError('unavailable', 'volumes are not available here');
    return this.volumeService;
  }

  async prepare(containerId: string, requests: MountRequest[]): Promise<PreparedMounts> {
    // checked before anything is made, so a refused request leaves nothing behind
    for (const m of requests) {
      if (m.type === 'volume') void this.volumes;
      if (m.type === 'bind' && !m.createSource && !existsSync(m.source)) throw new KrError('invalid', `invalid mount config for type "bind": bind source path does not exist: ${m.source}`);
      if (m.type === 'volume' && m.volume?.driver) this.volumes.driver(m.volume.driver);
    }
    const specs: MountSpec[] = [];
    const records: MountRecord[] = [];
    const made: string[] = [];
    const mounted: string[] = [];
    const undo = async () => {
      for (const name of mounted) await this.volumes.unmount(name, containerId).catch(() => undefined);
      for (const name of made) await this.volumes.remove(name, true).catch(() => undefined);
    };
    try {
      for (const m of requests) {
        if (m.type === 'tmpfs') {
          specs.push({ type: 'tmpfs', target: m.destination, options: m.tmpfs });
          if (m.listed) records.push({ type: 'tmpfs', source: '', destination: m.destination, mode: m.mode, rw: !m.readonly, propagation: m.propagation });
        } else if (m.type === 'bind') {
          // -v makes a missing source a directory, as docker does; an existing file stays what it is
          if (m.createSource && !existsSync(m.source)) await mkdir(m.source, { recursive: true, mode: 0o755 }).catch((err) => Promise.reject(withContext(err, `create mount source ${m.source}`)));
          specs.push({ type: 'bind', source: m.source, target: m.destination, readonly: m.readonly });
          records.push({ type: 'bind', source: m.source, destination: m.destination, mode: m.mode, rw: !m.readonly, propagation: m.propagation });
        } else {
          const { volume, created } = await this.volumes.create(
            { Name: m.source || undefined, Driver: m.volume?.driver, DriverOpts: m.volume?.options, Labels: m.volume?.labels },
            m.source ? {} : { [ANONYMOUS_LABEL]: '' },
          );
          if (created) made.push(volume.name);
          const target = await this.volumes.mount(volume, containerId);
          mounted.push(volume.name);
          const readonly = m.readonly || !!target.readonly;
          specs.push({ type: 'bind', source: target.path, target: m.destination, readonly, populate: !m.noCopy });
          records.push({ type: 'volume', name: volume.name, source: volume.mountpoint, destination: m.destination, driver: volume.driver, mode: m.mode, rw: !readonly, propagation: m.propagation });
        }
      }
    } catch (err) {
      await undo();
      throw err;
    }
    return { specs, records, undo };
  }

  /** The container's record exists: its rows now mark the volumes in use. */
  commit(containerId: string, records: MountRecord[]): void {
    this.records.insertMounts(containerId, records);
  }

  /** docker's inspect Mounts. */
  view(containerId: string): object[] {
    return this.records.mountsOf(containerId).map((m) => ({
      Type: m.type,
      ...(m.name !== undefined ? { Name: m.name } : {}),
      Source: m.source,
      Destination: m.destination,
      ...(m.driver !== undefined ? { Driver: m.driver } : {}),
      Mode: m.mode,
      RW: m.rw,
      Propagation: m.propagation,
    }));
  }

  /** docker ps --filter volume=X: a volume name or a mount destination of the container. */
  matches(containerId: string, wanted: string[] | undefined): boolean {
    if (!wanted?.length) return true;
    return this.records.mountsOf(containerId).some((m) => wanted.some((w) => w === m.name || w === m.destination || w === m.source));
  }

  /** Volume events as dockerd sends them when a container starts. */
  started(containerId: string): void {
    for (const m of this.records.mountsOf(containerId)) {
      if (m.type !== 'volume' || !m.name) continue;
      this.volumeService?.containerEvent('mount', m.name, { container: containerId, destination: m.destination, driver: m.driver ?? '', propagation: m.propagation, 'read/write': String(m.rw) });
    }
  }

  stopped(containerId: string): void {
    for (const m of this.records.mountsOf(containerId)) {
      if (m.type === 'volume' && m.name) this.volumeService?.containerEvent('unmount', m.name, { container: containerId, driver: m.driver ?? '' });
    }
  }

  /** Read before the container's record goes (its rows go with it); pass to released(). */
  held(containerId: string): MountRecord[] {
    return this.records.mountsOf(containerId);
  }

  /** The container is gone: unmount what no one else holds; anonymous volumes go with `removeVolumes`. */
  async released(containerId: string, held: MountRecord[], removeVolumes: boolean): Promise<void> {
    if (!this.volumeService) return;
    for (const m of held) {
      if (m.type !== 'volume' || !m.name) continue;
      await this.volumes.unmount(m.name, containerId).catch(() => undefined);
      if (removeVolumes) await this.volumes.removeIfAnonymousAndUnused(m.name).catch(() => undefined);
    }
  }
}
