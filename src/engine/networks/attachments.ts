// A container's networking, from create to rm: its namespace file (bridge mode), endpoints on
// networks, /etc/hosts + resolv.conf + hostname, and published ports (a proxy per binding).
// The namespace outlives stops and restarts of the container, so connect/disconnect work in
// any state and a restarted container comes back on the same addresses.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KrError } from '../../util/errors.ts';
import type { ContainerSpec, MountSpec } from '../../runtime/runtime.ts';
import { createNetns, isMounted, removeNetns } from '../../net/netns.ts';
import { startProxy, type Proxy } from '../../net/port-proxy.ts';
import { useEmbeddedDns, writeContainerFiles } from './container-files.ts';
import { endpointRequest, endpointRequests, type EndpointRequest, type NetworkHostConfig, type PortBinding } from './container-config.ts';
import type { ContainerNetworking, EndpointRecord, NetworkRecord } from './records.ts';
import type { NetworkService } from './service.ts';
import { listNetworkView, networkSettingsView } from './settings-view.ts';

export interface ContainerRef {
  id: string;
  name: string;
}

export interface NetworkedContainer extends ContainerRef {
  hostname: string;
  domainname: string;
  hostConfig: NetworkHostConfig;
  exposedPorts: Record<string, object>;
  /** The raw create body, for NetworkingConfig.EndpointsConfig. */
  body: unknown;
}

export class ContainerNetworks {
  readonly nets: NetworkService;
  private readonly root: string;
  private readonly proxies = new Map<string, Proxy[]>();
  /** Set by the daemon once the container service exists: docker's container reference lookup. */
  resolveContainer: (ref: string) => ContainerRef = () => {
    throw new KrError('unavailable', 'containers are not available yet');
  };
  /** Set by the daemon: the runtime told that a container's namespace changed (a VM pod's guest follows). */
  changed: (id: string) => Promise<void> = async () => undefined;

  constructor(nets: NetworkService, dataRoot: string) {
    this.nets = nets;
    this.root = join(dataRoot, 'network', 'containers');
  }

  /** Before the runtime creates the container: what it joins and the files it binds. */
  async prepare(c: NetworkedContainer): Promise<{ network: NonNullable<ContainerSpec['network']>; mounts: MountSpec[] }> {
    const hc = c.hostConfig;
    const dir = join(this.root, c.id);
    const files = { dir, hostname: c.hostname, domainname: c.domainname, extraHosts: this.extraHosts(hc), dns: hc.Dns, dnsSearch: hc.DnsSearch, dnsOptions: hc.DnsOptions };
    if (hc.NetworkMode.startsWith('container:')) {
      const other = this.resolveContainer(hc.NetworkMode.slice('container:'.length));
      const theirs = this.nets.records.networking(other.id);
      if (!theirs?.netns) throw new KrError('conflict', `cannot join the network namespace of container ${other.name}: it has none of its own (mode ${theirs?.mode ?? 'unknown'})`);
      this.nets.records.setNetworking({ container_id: c.id, mode: `container:${other.id}`, netns: null, ports: {} });
      const theirDir = join(this.root, other.id);
      return { network: { netnsPath: theirs.netns }, mounts: ['hosts', 'resolv.conf'].map((f) => ({ type: 'bind' as const, source: join(theirDir, f), target: `/etc/${f}` })) };
    }
    const n = this.nets.resolve(hc.NetworkMode);
    if (n.driver === 'host' || n.driver === 'null') {
      this.nets.records.setNetworking({ container_id: c.id, mode: n.name, netns: null, ports: {} });
      const mounts = await writeContainerFiles({ ...files, hostMode: n.driver === 'host' });
      return { network: n.driver === 'host' ? 'host' : 'none', mounts };
    }
    const netns = join(dir, 'netns');
    await mkdir(dir, { recursive: true });
    // recorded first: a crash from here on leaves a row that recover cleans up
    this.nets.records.setNetworking({ container_id: c.id, mode: 'bridge', netns, ports: {} });
    try {
      const requests = endpointRequests(c.body);
      const first = await this.nets.attach(n, { id: c.id, netns, ...this.requestFor(requests, n), defaultRoute: true, createNetns: true });
      for (const [ref, req] of requests) {
        const other = this.nets.resolve(ref);
        if (other.id !== n.id) await this.nets.attach(other, { id: c.id, netns, ...req, defaultRoute: false });
      }
      const mounts = await writeContainerFiles({ ...files, ip: first.ip, nameserver: this.nets.isUserDefined(n) ? n.ipam.Config[0].Gateway : undefined });
      return { network: { netnsPath: netns }, mounts };
    } catch (err) {
      await this.release(c.id);
      throw err;
    }
  }

  private requestFor(requests: Map<string, EndpointRequest>, n: NetworkRecord): EndpointRequest {
    return requests.get(n.name) ?? requests.get(n.id) ?? [...requests].find(([k]) => n.id.startsWith(k))?.[1] ?? { aliases: [] };
  }

  /** --add-host entries with host-gateway replaced by the default bridge's address. */
  private extraHosts(hc: NetworkHostConfig): string[] {
    return (hc.ExtraHosts ?? []).map((e) => {
      if (!e.endsWith(':host-gateway')) return e;
      const bridge = this.nets.records.byName('bridge');
      return `${e.slice(0, e.lastIndexOf(':'))}:${bridge?.ipam.Config[0]?.Gateway ?? '127.0.0.1'}`;
    });
  }

  /**
   * Before the main process (re)starts: its ports published (as docker, only while it runs; a
   * port it had before is taken again when it is free). Throws, as docker's start does, when a
   * host port is taken.
   */
  async started(id: string): Promise<void> {
    if (this.proxies.has(id)) return;
    await this.ensureNamespace(id);
    const nw = this.nets.records.networking(id);
    const c = this.nets.records.containerConfig(id);
    const first = this.nets.records.endpointsOf(id)[0];
    if (!nw || !c || !first) return;
    try {
      const ports = await this.publish(id, c.hostConfig, c.exposedPorts, first.ip, nw.ports);
      this.nets.records.setNetworking({ ...nw, ports });
    } catch (err) {
      this.stopped(id);
      throw err;
    }
  }

  /** The container's namespace, rebuilt with its recorded endpoints when it was dropped. */
  private async ensureNamespace(id: string): Promise<void> {
    const nw = this.nets.records.networking(id);
    if (!nw?.netns || isMounted(nw.netns)) return;
    const endpoints = this.nets.records.endpointsOf(id);
    try {
      for (const [i, e] of endpoints.entries()) await this.nets.replug(e, nw.netns, { create: i === 0, defaultRoute: i === 0 });
      if (endpoints.length === 0) await createNetns(nw.netns, ['link set lo up']);
    } catch (err) {
      await removeNetns(nw.netns).catch(() => undefined);
      throw err;
    }
  }

  /** After the main process exited for good (no restart coming): its host ports are freed. */
  stopped(id: string): void {
    for (const p of this.proxies.get(id) ?? []) p.close();
    this.proxies.delete(id);
    const nw = this.nets.records.networking(id);
    if (nw && Object.keys(nw.ports).length) this.nets.records.setNetworking({ ...nw, ports: {} });
  }

  /** Proxies for the bindings (and every exposed port with -P); docker's Ports map as bound. */
  private async publish(id: string, hc: NetworkHostConfig, exposed: Record<string, object>, ip: string, wanted?: ContainerNetworking['ports']): Promise<ContainerNetworking['ports']> {
    const ports: ContainerNetworking['ports'] = {};
    const bindings: Record<string, PortBinding[]> = { ...hc.PortBindings };
    for (const k of Object.keys(exposed)) if (hc.PublishAllPorts && !bindings[k]?.length) bindings[k] = [{ HostIp: '', HostPort: '' }];
    for (const k of Object.keys(exposed)) ports[k] = null;
    const started: Proxy[] = this.proxies.get(id) ?? [];
    this.proxies.set(id, started);
    for (const [key, list] of Object.entries(bindings)) {
      const [port, proto] = key.split('/');
      ports[key] = list.length ? [] : null;
      for (const [i, b] of list.entries()) {
        const again = wanted?.[key]?.[i];
        const forward = { proto: proto as 'tcp' | 'udp', hostIp: b.HostIp, hostPort: Number(again?.HostPort || b.HostPort || 0), targetIp: ip, targetPort: Number(port) };
        // a port the kernel picked last time is only a preference
        const p = await startProxy(forward).catch((err) => (!b.HostPort && forward.hostPort ? startProxy({ ...forward, hostPort: 0 }) : Promise.reject(err)));
        started.push(p);
        ports[key]!.push({ HostIp: b.HostIp || '0.0.0.0', HostPort: String(p.port) });
      }
    }
    return ports;
  }

  /** Everything of the container's networking goes: proxies, endpoints, namespace, files. */
  async release(id: string): Promise<void> {
    for (const p of this.proxies.get(id) ?? []) p.close();
    this.proxies.delete(id);
    const dir = join(this.root, id);
    const endpoints = this.nets.records.endpointsOf(id);
    // the veths go with the namespace (their container ends are in it): no `ip link del` each
    const gone = await removeNetns(join(dir, 'netns')).then(() => true, () => false);
    for (const e of endpoints) await this.nets.detach(e, { linkGone: gone }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    this.nets.records.removeNetworking(id);
  }

  async connect(netRef: string, body: unknown): Promise<void> {
    const n = this.nets.resolve(netRef);
    const b = (body ?? {}) as { Container?: unknown; EndpointConfig?: unknown };
    if (typeof b.Container !== 'string') throw new KrError('invalid', 'Container is required');
    const c = this.resolveContainer(b.Container);
    const mine = this.ownNamespace(c, n);
    const e = await this.nets.attach(n, { id: c.id, netns: mine, ...endpointRequest(b.EndpointConfig), defaultRoute: this.nets.records.endpointsOf(c.id).length === 0 });
    // a container that had no embedded DNS (default bridge) gets this network's, as in docker
    if (this.nets.isUserDefined(n)) await useEmbeddedDns(join(this.root, c.id, 'resolv.conf'), n.ipam.Config[0].Gateway, this.gateways());
    // a runtime that cannot carry the new network over fails the connect, as docker's does
    await this.changed(c.id).catch(async (err: unknown) => {
      await this.nets.detach(e).catch(() => undefined);
      throw err;
    });
  }

  /** Gateways of the user networks: the addresses an embedded DNS listens on. */
  private gateways(): Set<string> {
    return new Set(this.nets.records.networks().filter((x) => this.nets.isUserDefined(x)).map((x) => x.ipam.Config[0]?.Gateway));
  }

  async disconnect(netRef: string, body: unknown): Promise<void> {
    const n = this.nets.resolve(netRef);
    const b = (body ?? {}) as { Container?: unknown };
    if (typeof b.Container !== 'string') throw new KrError('invalid', 'Container is required');
    const c = this.resolveContainer(b.Container);
    this.ownNamespace(c, n);
    const e = this.nets.records.endpointsOf(c.id).find((x) => x.network_id === n.id);
    if (!e) throw new KrError('denied', `container ${c.id} is not connected to network ${n.name}`);
    await this.nets.detach(e);
    await this.changed(c.id);
  }

  private ownNamespace(c: ContainerRef, n: NetworkRecord): string {
    const mine = this.nets.records.networking(c.id);
    if (n.driver === 'host' || mine?.mode === 'host') throw new KrError('denied', 'container cannot be disconnected from host network or connected to host network');
    if (!mine?.netns) throw new KrError('denied', `container sharing network namespace with another container or host cannot be connected to any other network`);
    return mine.netns;
  }

  settings(id: string): object {
    return networkSettingsView(this.view(id));
  }

  listSummary(id: string): { Ports: object[]; NetworkSettings: object } {
    return listNetworkView(this.view(id));
  }

  private view(id: string): { networking?: ContainerNetworking; endpoints: { e: EndpointRecord; n: NetworkRecord; gateway: string; bits: number; dnsNames: string[] | null }[]; modeNetwork?: NetworkRecord } {
    const networking = this.nets.records.networking(id);
    const name = this.nets.records.containerName(id) ?? '';
    const endpoints = this.nets.records.endpointsOf(id).flatMap((e) => {
      const n = this.nets.records.network(e.network_id);
      if (!n) return [];
      const pool = n.ipam.Config[0];
      const dnsNames = this.nets.isUserDefined(n) ? [name, ...e.aliases, id.slice(0, 12)] : null;
      return [{ e, n, gateway: pool.Gateway, bits: Number(pool.Subnet.split('/')[1]), dnsNames }];
    });
    const mode = networking?.mode;
    const modeNetwork = mode === 'host' || mode === 'none' ? this.nets.records.byName(mode) : undefined;
    return { networking, endpoints, modeNetwork };
  }

  /** After a krd restart: ports of running containers bound again; what belongs to no container any more removed. */
  async recover(): Promise<void> {
    const containers = this.nets.records.containerIds();
    for (const nw of this.nets.records.allNetworking()) {
      if (!containers.has(nw.container_id)) {
        await this.release(nw.container_id).catch(() => undefined);
        continue;
      }
      const state = this.nets.records.containerConfig(nw.container_id)?.state;
      if (state !== 'running' && state !== 'paused' && state !== 'restarting') continue;
      await this.started(nw.container_id).catch((err) => process.stderr.write(`krd: ports of ${nw.container_id.slice(0, 12)}: ${(err as Error).message}\n`));
    }
    for (const id of await readdir(this.root).catch(() => [] as string[])) {
      if (!this.nets.records.networking(id) && existsSync(join(this.root, id))) await this.release(id).catch(() => undefined);
    }
  }

  /**
   * krd stops: proxies closed; the namespaces of exited containers dropped (their veths go with
   * them, so no bridge is kept for them; the next start rebuilds them with the same addresses).
   */
  async close(): Promise<void> {
    for (const list of this.proxies.values()) for (const p of list) p.close();
    this.proxies.clear();
    for (const nw of this.nets.records.allNetworking()) {
      if (nw.netns && !this.nets.records.holdsNamespace(nw.container_id)) await removeNetns(nw.netns).catch(() => undefined);
    }
  }
}
