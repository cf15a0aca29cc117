// What the routes see of a running krd: its settings and services.
import type { StateDb } from './state/db.ts';
import type { ImageService } from './images/service.ts';
import type { ContainerService } from './containers/service.ts';
import type { ExecService } from './execs/service.ts';
import type { ArchiveService } from './archive/service.ts';
import type { StatsService } from './stats/service.ts';
import type { ContainerLayers } from './containers/layers.ts';
import type { ContainerUpdates } from './containers/update.ts';
import type { VolumeService } from './volumes/service.ts';
import type { EventService } from './events/service.ts';
import type { NetworkService } from './networks/service.ts';
import type { ContainerNetworks } from './networks/attachments.ts';

export const KRD_VERSION = '0.1.0-kraud';

export type RuntimeName = 'ns' | 'vm';

export interface EngineContext {
  dataRoot: string;
  runtime: RuntimeName;
  /** Identities whose bali files load without a warning. */
  trusted: Uint8Array[];
  state: StateDb;
  images: ImageService;
  containers: ContainerService;
  execs: ExecService;
  archive: ArchiveService;
  stats: StatsService;
  /** docker diff, export and commit. */
  layers: ContainerLayers;
  /** docker update. */
  updates: ContainerUpdates;
  networks: NetworkService;
  /** Containers' side of networking: endpoints, files, published ports; connect/disconnect. */
  containerNetworks: ContainerNetworks;
  volumes: VolumeService;
  /** The bus behind GET /events: every service publishes what it did. */
  events: EventService;
  /** A random ID made once per data root (docker's /info ID). */
  id: string;
}
