// IPv4 addresses as unsigned 32-bit numbers and CIDR prefixes: parsing with one-line errors,
// containment and overlap, the arithmetic IPAM needs.
import { KrError } from '../util/errors.ts';

export interface Cidr {
  /** Network address (host bits cleared). */
  base: number;
  bits: number;
}

export function parseIp(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function mustIp(text: string, what: string): number {
  const ip = parseIp(text);
  if (ip === undefined) throw new KrError('invalid', `invalid ${what}: ${JSON.stringify(text)} is not an IPv4 address`);
  return ip;
}

export function formatIp(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

export function mask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** "10.1.0.0/16"; host bits set ("10.1.0.1/16") are refused as docker does for subnets. */
export function parseCidr(text: string, what = 'subnet', strict = true): Cidr {
  const slash = text.indexOf('/');
  const ip = slash > 0 ? parseIp(text.slice(0, slash)) : undefined;
  const bits = slash > 0 && /^\d{1,2}$/.test(text.slice(slash + 1)) ? Number(text.slice(slash + 1)) : -1;
  if (ip === undefined || bits < 0 || bits > 32) throw new KrError('invalid', `invalid ${what}: invalid CIDR address: ${text}`);
  const base = (ip & mask(bits)) >>> 0;
  if (strict && base !== ip) throw new KrError('invalid', `invalid ${what} ${text}: it should be ${formatCidr({ base, bits })}`);
  return { base, bits };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.bits}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.bits);
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.bits)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const bits = Math.min(a.bits, b.bits);
  return ((a.base & mask(bits)) >>> 0) === ((b.base & mask(bits)) >>> 0);
}

/** docker's MAC for an address: 02:42 then the four address bytes. */
export function macFor(ip: number): string {
  return ['02', '42', ...[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
