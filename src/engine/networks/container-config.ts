// The networking parts of docker's create body: HostConfig's NetworkMode, PortBindings,
// PublishAllPorts, ExtraHosts, Dns*, Config.ExposedPorts and NetworkingConfig.EndpointsConfig,
// checked into one shape each (bad input → one line naming it).
import { KrError } from '../../util/errors.ts';
import { parseIp } from '../../net/ipv4.ts';

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

export interface NetworkHostConfig {
  NetworkMode: string;
  PortBindings: Record<string, PortBinding[]>;
  PublishAllPorts: boolean;
  ExtraHosts: string[] | null;
  Dns: string[];
  DnsSearch: string[];
  DnsOptions: string[];
}

export interface EndpointRequest {
  aliases: string[];
  ipv4?: string;
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new KrError('invalid', `${what} must be a list of strings`);
  return v as string[];
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new KrError('invalid', `${what} must be an object`);
  return v as Record<string, unknown>;
}

/** "80", "80/tcp", "53/udp" → "80/tcp"… */
export function portKey(k: string): string {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(k);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new KrError('invalid', `invalid port specification: "${k}"`);
  if (m[2] === 'sctp') throw new KrError('invalid', `sctp ports are not supported: "${k}"`);
  return `${Number(m[1])}/${m[2] ?? 'tcp'}`;
}

export function parseNetworkHostConfig(h: Record<string, unknown>): NetworkHostConfig {
  const mode = h.NetworkMode;
  if (mode !== undefined && mode !== null && typeof mode !== 'string') throw new KrError('invalid', 'NetworkMode must be a string');
  const bindings: Record<string, PortBinding[]> = {};
  for (const [k, v] of Object.entries(record(h.PortBindings, 'PortBindings'))) {
    const list = v === null ? [] : v;
    if (!Array.isArray(list)) throw new KrError('invalid', `PortBindings of ${k} must be a list`);
    bindings[portKey(k)] = list.map((b: unknown) => {
      const o = record(b, `PortBindings of ${k}`);
      const hostIp = typeof o.HostIp === 'string' ? o.HostIp : '';
      const hostPort = typeof o.HostPort === 'string' ? o.HostPort : o.HostPort === undefined || o.HostPort === null ? '' : String(o.HostPort);
      if (hostIp && parseIp(hostIp) === undefined) throw new KrError('invalid', `invalid host IP ${JSON.stringify(hostIp)} for port ${k} (IPv4 only)`);
      if (hostPort && (!/^\d{1,5}$/.test(hostPort) || Number(hostPort) > 65535)) throw new KrError('invalid', `invalid host port ${JSON.stringify(hostPort)} for port ${k} (a number; ranges are not supported)`);
      return { HostIp: hostIp, HostPort: hostPort };
    });
  }
  const extraHosts = strings(h.ExtraHosts, 'ExtraHosts').map((e) => {
    const sep = e.includes('=') ? '=' : ':';
    const i = e.indexOf(sep);
    const name = e.slice(0, i);
    const ip = e.slice(i + 1);
    if (i <= 0 || (ip !== 'host-gateway' && parseIp(ip) === undefined && !ip.includes(':'))) throw new KrError('invalid', `invalid IP address in add-host: "${e}"`);
    return `${name}:${ip}`;
  });
  if (typeof h.PublishAllPorts !== 'boolean' && h.PublishAllPorts !== undefined && h.PublishAllPorts !== null) throw new KrError('invalid', 'PublishAllPorts must be a boolean');
  return {
    NetworkMode: !mode || mode === 'default' ? 'bridge' : mode,
    PortBindings: bindings,
    PublishAllPorts: !!h.PublishAllPorts,
    ExtraHosts: extraHosts.length ? extraHosts : null,
    Dns: strings(h.Dns, 'Dns'),
    DnsSearch: strings(h.DnsSearch, 'DnsSearch'),
    DnsOptions: strings(h.DnsOptions, 'DnsOptions'),
  };
}

/** The image's exposed ports plus the request's (and the published ones, as docker adds them). */
export function exposedPorts(request: unknown, image: Record<string, unknown> | undefined, bindings: Record<string, PortBinding[]>): Record<string, object> {
  const out: Record<string, object> = {};
  for (const k of [...Object.keys(image ?? {}), ...Object.keys(record(request, 'ExposedPorts')), ...Object.keys(bindings)]) out[portKey(k)] = {};
  return out;
}

/** NetworkingConfig.EndpointsConfig: per network name, its aliases and asked address. */
export function endpointRequests(body: unknown): Map<string, EndpointRequest> {
  const nc = record(record(body, 'request body').NetworkingConfig, 'NetworkingConfig');
  const out = new Map<string, EndpointRequest>();
  // the CLI names the default network "default", as in NetworkMode
  for (const [net, v] of Object.entries(record(nc.EndpointsConfig, 'EndpointsConfig'))) out.set(net === 'default' ? 'bridge' : net, endpointRequest(v));
  return out;
}

export function endpointRequest(v: unknown): EndpointRequest {
  const e = record(v, 'EndpointConfig');
  const ipam = record(e.IPAMConfig, 'IPAMConfig');
  if (ipam.IPv4Address !== undefined && ipam.IPv4Address !== null && typeof ipam.IPv4Address !== 'string') throw new KrError('invalid', 'IPv4Address must be a string');
  return { aliases: strings(e.Aliases, 'Aliases'), ipv4: (ipam.IPv4Address as string) || undefined };
}
