// Network rows, endpoints (a container on a network: its address, aliases, veth) and each
// container's networking (mode, namespace file, published ports) in the state database.
import type { StateDb } from '../state/db.ts';
import type { NetworkHostConfig } from './container-config.ts';

export interface IpamPool {
  Subnet: string;
  Gateway: string;
  IPRange?: string;
}

export interface NetworkRecord {
  id: string;
  name: string;
  driver: string; // bridge | host | null
  created: number;
  ipam: { Driver: string; Options: Record<string, string>; Config: IpamPool[] };
  labels: Record<string, string>;
  options: Record<string, string>;
  internal: boolean;
  attachable: boolean;
}

export interface EndpointRecord {
  id: string;
  network_id: string;
  container_id: string;
  ip: string;
  aliases: string[];
  ifname: string;
  host_ifname: string;
  ipam_config: { IPv4Address?: string };
  created: number;
}

export interface ContainerNetworking {
  container_id: string;
  mode: string;
  netns: string | null;
  /** docker's NetworkSettings.Ports: "80/tcp" → bindings (null: exposed, not published). */
  ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
}

type Row = Record<string, string | number | null>;

function network(r: Row): NetworkRecord {
  return {
    id: String(r.id),
    name: String(r.name),
    driver: String(r.driver),
    created: Number(r.created),
    ipam: JSON.parse(String(r.ipam)),
    labels: JSON.parse(String(r.labels)),
    options: JSON.parse(String(r.options)),
    internal: !!r.internal,
    attachable: !!r.attachable,
  };
}

function endpoint(r: Row): EndpointRecord {
  return { ...(r as unknown as EndpointRecord), aliases: JSON.parse(String(r.aliases)), ipam_config: JSON.parse(String(r.ipam_config)) };
}

export class NetworkRecords {
  readonly state: StateDb;

  constructor(state: StateDb) {
    this.state = state;
  }

  private all<T>(sql: string, map: (r: Row) => T, ...args: (string | number)[]): T[] {
    return (this.state.db.prepare(sql).all(...args) as Row[]).map(map);
  }

  networks(): NetworkRecord[] {
    return this.all('SELECT * FROM networks ORDER BY created', network);
  }

  network(id: string): NetworkRecord | undefined {
    return this.all('SELECT * FROM networks WHERE id = ?', network, id)[0];
  }

  byName(name: string): NetworkRecord | undefined {
    return this.all('SELECT * FROM networks WHERE name = ?', network, name)[0];
  }

  byPrefix(prefix: string): NetworkRecord[] {
    return this.all("SELECT * FROM networks WHERE id LIKE ? || '%'", network, prefix);
  }

  insertNetwork(n: NetworkRecord): void {
    this.state.db
      .prepare('INSERT INTO networks (id, name, driver, created, ipam, labels, options, internal, attachable) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(n.id, n.name, n.driver, n.created, JSON.stringify(n.ipam), JSON.stringify(n.labels), JSON.stringify(n.options), n.internal ? 1 : 0, n.attachable ? 1 : 0);
  }

  setIpam(id: string, ipam: NetworkRecord['ipam']): void {
    this.state.db.prepare('UPDATE networks SET ipam = ? WHERE id = ?').run(JSON.stringify(ipam), id);
  }

    removeNetwork(id: string): void {
    this.state.db.prepare('DELETE FROM networks WHERE id = ?').run(id);
  }

  endpoints(networkId: string): EndpointRecord[] {
    return this.all('SELECT * FROM endpoints WHERE network_id = ? ORDER BY created', endpoint, networkId);
  }

  allEndpoints(): EndpointRecord[] {
    return this.all('SELECT * FROM endpoints', endpoint);
  }

  endpointsOf(containerId: string): EndpointRecord[] {
    return this.all('SELECT * FROM endpoints WHERE container_id = ? ORDER BY created', endpoint, containerId);
  }

  insertEndpoint(e: EndpointRecord): void {
    this.state.db
      .prepare('INSERT INTO endpoints (id, network_id, container_id, ip, aliases, ifname, host_ifname, ipam_config, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(e.id, e.network_id, e.container_id, e.ip, JSON.stringify(e.aliases), e.ifname, e.host_ifname, JSON.stringify(e.ipam_config), e.created);
  }

  removeEndpoint(id: string): void {
    this.state.db.prepare('DELETE FROM endpoints WHERE id = ?').run(id);
  }

  networking(containerId: string): ContainerNetworking | undefined {
    return this.all('SELECT * FROM container_networking WHERE container_id = ?', (r) => ({ ...(r as unknown as ContainerNetworking), ports: JSON.parse(String(r.ports)) }), containerId)[0];
  }

  allNetworking(): ContainerNetworking[] {
    return this.all('SELECT * FROM container_networking', (r) => ({ ...(r as unknown as ContainerNetworking), ports: JSON.parse(String(r.ports)) }));
  }

  setNetworking(n: ContainerNetworking): void {
    this.state.db
      .prepare('INSERT OR REPLACE INTO container_networking (container_id, mode, netns, ports) VALUES (?, ?, ?, ?)')
      .run(n.container_id, n.mode, n.netns, JSON.stringify(n.ports));
  }

  removeNetworking(containerId: string): void {
    this.state.db.prepare('DELETE FROM container_networking WHERE container_id = ?').run(containerId);
  }

  /** Current container names (the containers table is the truth; renames show up at once). */
  containerName(id: string): string | undefined {
    const r = this.state.db.prepare('SELECT name FROM containers WHERE id = ?').get(id) as { name: string } | undefined;
    return r?.name;
  }

  /** What networking needs of a container's record: its state, HostConfig, exposed ports. */
  containerConfig(id: string): { state: string; hostConfig: NetworkHostConfig; exposedPorts: Record<string, object> } | undefined {
    const r = this.state.db.prepare('SELECT state, config, host_config FROM containers WHERE id = ?').get(id) as { state: string; config: string; host_config: string } | undefined;
    if (!r) return undefined;
    const hostConfig = JSON.parse(r.host_config) as NetworkHostConfig;
    return { state: r.state, hostConfig: { ...hostConfig, PortBindings: hostConfig.PortBindings ?? {} }, exposedPorts: (JSON.parse(r.config) as { ExposedPorts?: Record<string, object> }).ExposedPorts ?? {} };
  }

  /** A container whose namespace has (or may get) processes: anything but exited or dead. */
  holdsNamespace(id: string): boolean {
    const r = this.state.db.prepare('SELECT state FROM containers WHERE id = ?').get(id) as { state: string } | undefined;
    return !r || !['exited', 'dead'].includes(r.state);
  }

  /** Containers whose names resolve: those running (or paused, or between restarts). */
  isLive(id: string): boolean {
    const r = this.state.db.prepare('SELECT state FROM containers WHERE id = ?').get(id) as { state: string } | undefined;
    return !!r && ['running', 'paused', 'restarting'].includes(r.state);
  }

  containerIds(): Set<string> {
    return new Set((this.state.db.prepare('SELECT id FROM containers').all() as { id: string }[]).map((r) => r.id));
  }
}
