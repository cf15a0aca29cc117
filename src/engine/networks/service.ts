// The network service: docker's networks over the `networks` table. Predefined `bridge`
// (containers' default), `host` and `none`; user-defined bridge networks with their own subnet,
// a Linux bridge each (named from a hash of the data root, so krds sharing a namespace never
// collide), MASQUERADE for outbound traffic and an embedded DNS. Endpoints (a container's veth
// and address on a network) are attached and detached here; ContainerNetworking uses them.
import { createHash, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { KrError } from '../../util/errors.ts';
import { attachVeth, deleteLink, ensureBridge, linkExists, linksWithPrefix } from '../../net/bridge.ts';
import { formatIp, macFor, overlaps, parseIp } from '../../net/ipv4.ts';
import { disableNat, enableNat, removeChains } from '../../net/nat.ts';
import { prefixesInUse, withNetnsLock } from '../../net/netns-lock.ts';
import { NetworkResolver } from '../../net/dns/resolver.ts';
import type { EventService } from '../events/service.ts';
import type { StateDb } from '../state/db.ts';
import { allocate, checkOverlap, choosePool, poolFromBip, poolOf, poolRecord, requestedPool, type Pool } from './ipam.ts';
import { NetworkRecords, type EndpointRecord, type NetworkRecord } from './records.ts';
import { matchesNetworkFilters, networkView } from './views.ts';

const PREDEFINED = ['bridge', 'host', 'none'];

export interface NetworkOptions {
  /** dockerd's --bip: the default bridge's address and prefix ("172.17.0.1/16"). */
  bip?: string;
}

export class NetworkService {
  readonly records: NetworkRecords;
  /** 6 hex digits of the data root's hash: the stem of every device and chain name. */
  readonly tag: string;
  private readonly bus: EventService;
  private readonly opts: NetworkOptions;
  private readonly resolvers = new Map<string, NetworkResolver>();
  /** Networks whose bridge, rules and DNS this krd has made sure of. */
  private readonly up = new Set<string>();

  constructor(state: StateDb, dataRoot: string, bus: EventService, opts: NetworkOptions = {}) {
    this.records = new NetworkRecords(state);
    this.tag = createHash('sha256').update(resolve(dataRoot)).digest('hex').slice(0, 6);
    this.bus = bus;
    this.opts = opts;
  }

  get chain(): string {
    return `KRD-${this.tag}`;
  }

  bridgeOf(n: NetworkRecord): string {
    return `kr${this.tag}${n.id.slice(0, 7)}`;
  }

  /** A new host-side veth name (`kv` + 4 of the tag + 8 random hex: 14 of the 15 allowed). */
  vethName(): string {
    return `kv${this.tag.slice(0, 4)}${randomBytes(4).toString('hex')}`;
  }

  /** Predefined networks, then every bridge network's device, NAT and DNS, as the records say. */
  async init(): Promise<void> {
    await withNetnsLock(async () => {
      const now = Date.now();
      for (const name of PREDEFINED) {
        if (this.records.byName(name)) continue;
        const pool = name === 'bridge' ? (this.opts.bip ? poolFromBip(this.opts.bip) : choosePool([...(await prefixesInUse()), ...this.pools().map((p) => p.pool.subnet)])) : undefined;
        this.records.insertNetwork({
          id: randomBytes(32).toString('hex'),
          name,
          driver: name === 'none' ? 'null' : name,
          created: now,
          ipam: { Driver: 'default', Options: {}, Config: pool ? [poolRecord(pool)] : [] },
          labels: {},
          options: name === 'bridge' ? { 'com.docker.network.bridge.default_bridge': 'true', 'com.docker.network.bridge.enable_icc': 'true', 'com.docker.network.bridge.enable_ip_masquerade': 'true' } : {},
          internal: false,
          attachable: false,
        });
      }
      // user networks come up at once (their DNS answers even before a container joins); the
      // default bridge when a container needs it, so a krd that runs none leaves no trace
      for (const n of this.records.networks()) {
        if (n.driver !== 'bridge' || (!this.isUserDefined(n) && this.records.endpoints(n.id).length === 0)) continue;
        await this.bringUp(n).catch((err) => process.stderr.write(`krd: network ${n.name}: ${(err as Error).message}\n`));
      }
    });
    // veths whose endpoint is gone (krd was killed between steps)
    const known = new Set(this.records.allEndpoints().map((e) => e.host_ifname));
    for (const link of await linksWithPrefix(`kv${this.tag.slice(0, 4)}`)) if (!known.has(link)) await deleteLink(link);
  }

  private pools(): { name: string; pool: Pool }[] {
    return this.records
      .networks()
      .filter((n) => n.ipam.Config.length > 0)
      .map((n) => ({ name: n.name, pool: poolOf(n.ipam.Config[0]) }));
  }

  poolOf(n: NetworkRecord): Pool {
    if (n.ipam.Config.length === 0) throw new KrError('invalid', `network ${n.name} has no address pool`);
    return poolOf(n.ipam.Config[0]);
  }

  isUserDefined(n: NetworkRecord): boolean {
    return !PREDEFINED.includes(n.name);
  }

  /**
   * The network's bridge, rules and DNS, made when first needed. The default bridge's pool was
   * picked when krd first started; if another krd in this namespace has since taken it (or a
   * route now covers it), a free one is picked again while nobody uses it yet.
   */
  private async ensureUp(n: NetworkRecord): Promise<NetworkRecord> {
    if (this.up.has(n.id)) return n;
    return withNetnsLock(async () => {
      let cur = this.records.network(n.id) ?? n;
      if (this.up.has(cur.id)) return cur;
      if (cur.name === 'bridge' && this.records.endpoints(cur.id).length === 0 && !(await linkExists(this.bridgeOf(cur)))) {
        const others = this.pools().filter((p) => p.name !== 'bridge').map((p) => p.pool.subnet);
        const taken = [...(await prefixesInUse()), ...others];
        const pool = this.opts.bip ? poolFromBip(this.opts.bip) : cur.ipam.Config.length ? this.poolOf(cur) : undefined;
        const fresh = pool && !taken.some((t) => overlaps(t, pool.subnet)) ? pool : this.opts.bip ? pool! : choosePool(taken);
        if (!pool || fresh !== pool || cur.ipam.Config[0]?.Subnet !== poolRecord(fresh).Subnet) {
          this.records.setIpam(cur.id, { ...cur.ipam, Config: [poolRecord(fresh)] });
          cur = this.records.network(cur.id)!;
        }
      }
      await this.bringUp(cur);
      return cur;
    });
  }

  private async bringUp(n: NetworkRecord): Promise<void> {
    const pool = this.poolOf(n);
    const bridge = this.bridgeOf(n);
    await ensureBridge(bridge, pool.gateway, pool.subnet);
    await enableNat(this.chain, bridge, `kr${this.tag}+`, pool.subnet, n.internal);
    this.up.add(n.id);
    if (this.isUserDefined(n) && !this.resolvers.has(n.id)) {
      const table = {
        addresses: (name: string) => this.lookup(n.id, name),
        nameOf: (ip: string) => {
          const e = this.records.endpoints(n.id).find((x) => x.ip === ip);
          return e && this.records.containerName(e.container_id);
        },
      };
      this.resolvers.set(n.id, await NetworkResolver.listen(formatIp(pool.gateway), table));
    }
  }

  private async bringDown(n: NetworkRecord): Promise<void> {
    this.up.delete(n.id);
    this.resolvers.get(n.id)?.close();
    this.resolvers.delete(n.id);
    await disableNat(this.chain, this.bridgeOf(n), `kr${this.tag}+`, this.poolOf(n).subnet, n.internal);
    await deleteLink(this.bridgeOf(n));
  }

  /** Addresses of a container name, alias or short ID among the network's endpoints. */
  lookup(networkId: string, name: string): string[] {
    const out: string[] = [];
    for (const e of this.records.endpoints(networkId)) {
      if (!this.records.isLive(e.container_id)) continue;
      const cname = this.records.containerName(e.container_id)?.toLowerCase();
      if (cname === name || e.container_id.slice(0, 12) === name || e.aliases.some((a) => a.toLowerCase() === name)) out.push(e.ip);
    }
    return out;
  }

  /** A network by full ID, name or unique ID prefix (docker's order). */
  resolve(ref: string): NetworkRecord {
    const n = this.records.network(ref) ?? this.records.byName(ref);
    if (n) return n;
    const byPrefix = /^[0-9a-f]+$/.test(ref) ? this.records.byPrefix(ref) : [];
    if (byPrefix.length === 1) return byPrefix[0];
    if (byPrefix.length > 1) throw new KrError('invalid', `network ${ref} is ambiguous (${byPrefix.length} matches found based on ID prefix)`);
    throw new KrError('not-found', `network ${ref} not found`);
  }

  async create(body: unknown): Promise<{ Id: string; Warning: string }> {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new KrError('invalid', 'request body must be a JSON object');
    const b = body as Record<string, unknown>;
    const name = b.Name;
    if (typeof name !== 'string' || name === '') throw new KrError('invalid', 'network name is required');
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new KrError('invalid', `invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const driver = b.Driver === undefined || b.Driver === '' ? 'bridge' : b.Driver;
    if (driver !== 'bridge') throw new KrError('invalid', `network driver "${String(driver)}" is not supported (only bridge)`);
    if (b.EnableIPv6 === true) throw new KrError('invalid', 'IPv6 networks are not supported');
    for (const k of ['Labels', 'Options']) {
      const v = b[k];
      if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string'))) throw new KrError('invalid', `${k} must be an object of strings`);
    }
    const wanted = requestedPool(b.IPAM);
    return withNetnsLock(async () => {
      if (this.records.byName(name)) throw new KrError('conflict', `network with name ${name} already exists`);
      let pool: Pool;
      if (wanted) {
        checkOverlap(wanted, this.pools());
        pool = wanted;
      } else {
        pool = choosePool([...(await prefixesInUse()), ...this.pools().map((p) => p.pool.subnet)]);
      }
      const n: NetworkRecord = {
        id: randomBytes(32).toString('hex'),
        name,
        driver: 'bridge',
        created: Date.now(),
        ipam: { Driver: 'default', Options: {}, Config: [poolRecord(pool)] },
        labels: (b.Labels as Record<string, string>) ?? {},
        options: (b.Options as Record<string, string>) ?? {},
        internal: b.Internal === true,
        attachable: b.Attachable === true,
      };
      this.records.insertNetwork(n);
      try {
        await this.bringUp(n);
      } catch (err) {
        await this.bringDown(n).catch(() => undefined);
        this.records.removeNetwork(n.id);
        throw err;
      }
      this.bus.publish('network', 'create', n.id, { name: n.name, type: n.driver });
      return { Id: n.id, Warning: '' };
    });
  }

  list(filters: Map<string, string[]>): object[] {
    return this.records
      .networks()
      .filter((n) => matchesNetworkFilters(n, filters, this.isUserDefined(n), this.records.endpoints(n.id).length > 0))
      .map((n) => networkView(n, this.isUserDefined(n)));
  }

  inspect(ref: string): object {
    const n = this.resolve(ref);
    const containers: Record<string, object> = {};
    const bits = n.ipam.Config.length ? this.poolOf(n).subnet.bits : 0;
    for (const e of this.records.endpoints(n.id)) {
      containers[e.container_id] = { Name: this.records.containerName(e.container_id) ?? '', EndpointID: e.id, MacAddress: macOf(e), IPv4Address: `${e.ip}/${bits}`, IPv6Address: '' };
    }
    return networkView(n, this.isUserDefined(n), containers);
  }

  async remove(ref: string): Promise<void> {
    const n = this.resolve(ref);
    if (!this.isUserDefined(n)) throw new KrError('denied', `${n.name} is a pre-defined network and cannot be removed`);
    if (this.records.endpoints(n.id).length > 0) throw new KrError('denied', `error while removing network: network ${n.name} id ${n.id} has active endpoints`);
    await withNetnsLock(async () => {
      this.records.removeNetwork(n.id);
      await this.bringDown(n);
    });
    this.bus.publish('network', 'destroy', n.id, { name: n.name, type: n.driver });
  }

  async prune(filters: Map<string, string[]>): Promise<{ NetworksDeleted: string[] }> {
    const deleted: string[] = [];
    for (const n of this.records.networks()) {
      if (!this.isUserDefined(n) || this.records.endpoints(n.id).length > 0) continue;
      if (!matchesNetworkFilters(n, filters, true, false, true)) continue;
      await this.remove(n.id).then(() => deleted.push(n.name), () => undefined);
    }
    return { NetworksDeleted: deleted };
  }

  /**
   * Puts a container (its namespace file) on a network: an address (the asked one or the lowest
   * free), a veth named ifname inside, the default route when it is the first network. The
   * record is written before the devices, so a crash in between leaves something recover sees.
   */
  async attach(n: NetworkRecord, c: { id: string; netns: string; aliases: string[]; ipv4?: string; defaultRoute: boolean; createNetns?: boolean }): Promise<EndpointRecord> {
    if (n.driver !== 'bridge') throw new KrError('invalid', `container cannot be connected to network ${n.name} (driver ${n.driver})`);
    n = await this.ensureUp(n);
    if (c.aliases.length && !this.isUserDefined(n)) throw new KrError('invalid', 'network-scoped alias is supported only for containers in user defined networks');
    if (c.ipv4 && !this.isUserDefined(n)) throw new KrError('invalid', 'user specified IP address is supported on user defined networks only');
    const pool = this.poolOf(n);
    const mine = this.records.endpointsOf(c.id);
    if (mine.some((e) => e.network_id === n.id)) throw new KrError('denied', `endpoint with name ${this.records.containerName(c.id) ?? c.id} already exists in network ${n.name}`);
    const used = new Set(mine.map((e) => e.ifname));
    let k = 0;
    while (used.has(`eth${k}`)) k++;
    // allocate + insert without an await between them: two concurrent creates never share an address
    const ip = allocate(pool, new Set(this.records.endpoints(n.id).map((e) => e.ip)), c.ipv4);
    const e: EndpointRecord = { id: randomBytes(32).toString('hex'), network_id: n.id, container_id: c.id, ip, aliases: c.aliases, ifname: `eth${k}`, host_ifname: this.vethName(), ipam_config: c.ipv4 ? { IPv4Address: c.ipv4 } : {}, created: Date.now() };
    this.records.insertEndpoint(e);
    try {
      await attachVeth({ netns: c.netns, ifname: e.ifname, hostIfname: e.host_ifname, bridge: this.bridgeOf(n), ip: parseIp(ip)!, subnet: pool.subnet, gateway: c.defaultRoute ? pool.gateway : undefined }, { create: c.createNetns });
    } catch (err) {
      this.records.removeEndpoint(e.id);
      throw err;
    }
    this.bus.publish('network', 'connect', n.id, { name: n.name, type: n.driver, container: c.id });
    return e;
  }

  /**
   * Puts a recorded endpoint back into a (new) namespace with its address and names: after the
   * namespace of an exited container was dropped (krd stopped, the host rebooted).
   */
  async replug(e: EndpointRecord, netns: string, opts: { create: boolean; defaultRoute: boolean }): Promise<void> {
    let n = this.records.network(e.network_id);
    if (!n) throw new KrError('not-found', `network ${e.network_id} of endpoint ${e.id} not found`);
    n = await this.ensureUp(n);
    const pool = this.poolOf(n);
    await attachVeth({ netns, ifname: e.ifname, hostIfname: e.host_ifname, bridge: this.bridgeOf(n), ip: parseIp(e.ip)!, subnet: pool.subnet, gateway: opts.defaultRoute ? pool.gateway : undefined }, { create: opts.create });
  }

  async detach(e: EndpointRecord, opts: { linkGone?: boolean } = {}): Promise<void> {
    if (!opts.linkGone) await deleteLink(e.host_ifname);
    this.records.removeEndpoint(e.id);
    const n = this.records.network(e.network_id);
    if (n) this.bus.publish('network', 'disconnect', n.id, { name: n.name, type: n.driver, container: e.container_id });
  }

  /**
   * On shutdown: DNS sockets closed; bridges nobody uses any more are removed with their rules
   * (a test's krd leaves nothing in a shared namespace); ones with live containers stay.
   */
  async close(): Promise<void> {
    for (const r of this.resolvers.values()) r.close();
    this.resolvers.clear();
    let kept = 0;
    for (const n of this.records.networks()) {
      if (n.driver !== 'bridge') continue;
      // bridges of live containers stay (they outlive krd); exited ones got their namespace dropped
      if (this.records.endpoints(n.id).some((e) => this.records.holdsNamespace(e.container_id))) kept++;
      else if (this.up.has(n.id) || (await linkExists(this.bridgeOf(n)))) await this.bringDown(n).catch(() => undefined);
    }
    if (kept === 0) await removeChains(this.chain);
  }
}

export function macOf(e: EndpointRecord): string {
  return macFor(parseIp(e.ip)!);
}
