// Address management of bridge networks, as docker's default IPAM: a pool per network (subnet,
// gateway, optional ip-range to hand addresses out of), checked for overlap with krd's other
// networks; without --subnet the first free /16 of 172.17–31, then /20s of 192.168, skipping
// prefixes already routed in the namespace. Addresses go out in order, lowest free first.
import { KrError } from '../../util/errors.ts';
import { contains, formatCidr, formatIp, mustIp, overlaps, parseCidr, size, type Cidr } from '../../net/ipv4.ts';
import type { IpamPool } from './records.ts';

export interface Pool {
  subnet: Cidr;
  gateway: number;
  range: Cidr;
}

export function poolOf(p: IpamPool): Pool {
  const subnet = parseCidr(p.Subnet);
  return { subnet, gateway: mustIp(p.Gateway, 'gateway'), range: p.IPRange ? parseCidr(p.IPRange, 'ip-range') : subnet };
}

export function poolRecord(p: Pool): IpamPool {
  // docker's field order: Subnet, IPRange, Gateway
  return { Subnet: formatCidr(p.subnet), ...(p.range.bits !== p.subnet.bits ? { IPRange: formatCidr(p.range) } : {}), Gateway: formatIp(p.gateway) };
}

/** The IPAM.Config of a create request (at most one IPv4 pool), checked; undefined: choose one. */
export function requestedPool(ipam: unknown): Pool | undefined {
  if (ipam === undefined || ipam === null) return undefined;
  if (typeof ipam !== 'object' || Array.isArray(ipam)) throw new KrError('invalid', 'IPAM must be an object');
  const { Driver, Config } = ipam as { Driver?: unknown; Config?: unknown };
  if (Driver !== undefined && Driver !== '' && Driver !== 'default') throw new KrError('invalid', `IPAM driver "${String(Driver)}" is not supported (only default)`);
  if (Config === undefined || Config === null) return undefined;
  if (!Array.isArray(Config)) throw new KrError('invalid', 'IPAM.Config must be a list');
  if (Config.length === 0) return undefined;
  if (Config.length > 1) throw new KrError('invalid', 'only one IPv4 subnet per network is supported');
  const c = Config[0] as Record<string, unknown>;
  for (const k of ['Subnet', 'Gateway', 'IPRange']) if (c[k] !== undefined && typeof c[k] !== 'string') throw new KrError('invalid', `IPAM ${k} must be a string`);
  const subnetText = (c.Subnet as string | undefined) || '';
  if (!subnetText) {
    if (c.Gateway || c.IPRange) throw new KrError('invalid', 'a gateway or ip-range needs a subnet (--subnet)');
    return undefined;
  }
  if (subnetText.includes(':')) throw new KrError('invalid', `IPv6 subnets are not supported: ${subnetText}`);
  const subnet = parseCidr(subnetText);
  if (subnet.bits > 30) throw new KrError('invalid', `invalid subnet ${subnetText}: too small for a gateway and a container (at most /30)`);
  const range = c.IPRange ? parseCidr(c.IPRange as string, 'ip-range') : subnet;
  if (range.bits < subnet.bits || !contains(subnet, range.base)) throw new KrError('invalid', `invalid ip-range ${formatCidr(range)}: not inside subnet ${subnetText}`);
  const gateway = c.Gateway ? mustIp(c.Gateway as string, 'gateway') : subnet.base + 1;
  if (!usable(subnet, gateway)) throw new KrError('invalid', `invalid gateway ${formatIp(gateway)}: not a host address of subnet ${subnetText}`);
  return { subnet, gateway, range };
}

function usable(subnet: Cidr, ip: number): boolean {
  return contains(subnet, ip) && ip !== subnet.base && ip !== subnet.base + size(subnet) - 1;
}

export function checkOverlap(pool: Pool, others: { name: string; pool: Pool }[]): void {
  const clash = others.find((o) => overlaps(o.pool.subnet, pool.subnet));
  if (clash) throw new KrError('denied', `invalid pool request: Pool overlaps with other one on this address space (${formatCidr(pool.subnet)} and network ${clash.name}'s ${formatCidr(clash.pool.subnet)})`);
}

function* candidates(): Generator<Cidr> {
  for (let b = 17; b <= 31; b++) yield parseCidr(`172.${b}.0.0/16`);
  for (let c = 0; c < 256; c += 16) yield parseCidr(`192.168.${c}.0/20`);
}

/** The first default pool that overlaps nothing taken (networks of this krd, routed prefixes). */
export function choosePool(taken: Cidr[]): Pool {
  for (const subnet of candidates()) {
    if (!taken.some((t) => overlaps(t, subnet))) return { subnet, gateway: subnet.base + 1, range: subnet };
  }
  throw new KrError('unavailable', 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
}

/** "172.17.0.1/16" (dockerd's --bip): the bridge's address and its subnet. */
export function poolFromBip(bip: string): Pool {
  const c = parseCidr(bip, 'bip', false);
  const ip = mustIp(bip.split('/')[0], 'bip');
  const subnet = parseCidr(formatCidr(c));
  if (!usable(subnet, ip)) throw new KrError('invalid', `invalid bip ${bip}: not a host address of its subnet`);
  return { subnet, gateway: ip, range: subnet };
}

/** The lowest free address of the pool's range, or the one asked for (--ip) when it is free. */
export function allocate(pool: Pool, used: Set<string>, wanted?: string): string {
  if (wanted) {
    const ip = mustIp(wanted, 'IPv4 address');
    if (!usable(pool.subnet, ip) || ip === pool.gateway) throw new KrError('invalid', `invalid address ${wanted}: not a free host address of subnet ${formatCidr(pool.subnet)}`);
    if (used.has(wanted)) throw new KrError('conflict', `Address already in use: ${wanted}`);
    return wanted;
  }
  const first = pool.range.base;
  const n = size(pool.range);
  for (let i = 0; i < n; i++) {
    const ip = first + i;
    // the range's own first and last addresses are skipped too (x.y.z.0 of a /24 range looks like a network)
    if (!usable(pool.subnet, ip) || !usable(pool.range, ip) || ip === pool.gateway) continue;
    const text = formatIp(ip);
    if (!used.has(text)) return text;
  }
  throw new KrError('unavailable', `no available IPv4 addresses on this network's address pools: ${formatCidr(pool.range)}`);
}
