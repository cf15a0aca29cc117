// docker's NetworkSettings of a container (inspect) and the Ports/NetworkSettings of its
// `docker ps` entry, from its endpoints and published ports.
import { macOf } from './service.ts';
import type { ContainerNetworking, EndpointRecord, NetworkRecord } from './records.ts';

export interface SettingsInput {
  networking?: ContainerNetworking;
  endpoints: { e: EndpointRecord; n: NetworkRecord; gateway: string; bits: number; dnsNames: string[] | null }[];
  /** host or none: the network named by the mode. */
  modeNetwork?: NetworkRecord;
}

function networks(s: SettingsInput): Record<string, object> {
  const out: Record<string, object> = {};
  const empty = { IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', DriverOpts: null, GwPriority: 0, EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DNSNames: null };
  if (s.modeNetwork) out[s.modeNetwork.name] = { ...empty, NetworkID: s.modeNetwork.id };
  for (const { e, n, gateway, bits, dnsNames } of s.endpoints) {
    out[n.name] = {
      ...empty,
      IPAMConfig: e.ipam_config.IPv4Address ? { IPv4Address: e.ipam_config.IPv4Address } : null,
      Aliases: e.aliases.length ? e.aliases : null,
      MacAddress: macOf(e),
      NetworkID: n.id,
      EndpointID: e.id,
      Gateway: gateway,
      IPAddress: e.ip,
      IPPrefixLen: bits,
      DNSNames: dnsNames,
    };
  }
  return out;
}

export function networkSettingsView(s: SettingsInput): object {
  // the top-level fields describe the default bridge's endpoint, as in docker
  const main = s.endpoints.find((x) => x.n.name === 'bridge');
  return {
    Bridge: '',
    SandboxID: s.networking?.netns ? s.networking.container_id : '',
    SandboxKey: s.networking?.netns ?? '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: s.networking?.ports ?? {},
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: main?.e.id ?? '',
    Gateway: main?.gateway ?? '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    IPAddress: main?.e.ip ?? '',
    IPPrefixLen: main?.bits ?? 0,
    IPv6Gateway: '',
    MacAddress: main ? macOf(main.e) : '',
    Networks: networks(s),
  };
}

export function listNetworkView(s: SettingsInput): { Ports: object[]; NetworkSettings: object } {
  const ports: object[] = [];
  for (const [key, list] of Object.entries(s.networking?.ports ?? {})) {
    const [port, type] = key.split('/');
    if (!list?.length) ports.push({ PrivatePort: Number(port), Type: type });
    else for (const b of list) ports.push({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type });
  }
  return { Ports: ports, NetworkSettings: { Networks: networks(s) } };
}
