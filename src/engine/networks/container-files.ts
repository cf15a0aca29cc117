// /etc/hosts, /etc/resolv.conf and /etc/hostname of a container, written under the data root
// and bound into its rootfs (as docker does), so the image's own files stay untouched.
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MountSpec } from '../../runtime/runtime.ts';

export interface FilesSpec {
  dir: string;
  hostname: string;
  domainname?: string;
  /** The container's own address (first network), for its hosts entry. */
  ip?: string;
  /** "name:ip" entries of --add-host, host-gateway already replaced. */
  extraHosts: string[];
  /** The embedded DNS's address (user networks); otherwise the host's resolvers are copied. */
  nameserver?: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** Host mode: the host's own hosts file plus the extra entries. */
  hostMode?: boolean;
}

const LOCALHOST = `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
`;

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function hostsFile(s: FilesSpec): string {
  const base = s.hostMode ? read('/etc/hosts') || LOCALHOST : LOCALHOST;
  const extra = s.extraHosts.map((e) => {
    const i = e.indexOf(':');
    return `${e.slice(i + 1)}\t${e.slice(0, i)}\n`;
  });
  const fqdn = s.domainname ? `${s.hostname}.${s.domainname} ${s.hostname}` : s.hostname;
  const own = s.ip && !s.hostMode ? `${s.ip}\t${fqdn}\n` : '';
  return base + extra.join('') + own;
}

export function resolvConf(s: FilesSpec): string {
  const host = read('/etc/resolv.conf');
  const lines = (key: string) => [...host.matchAll(new RegExp(`^\\s*${key}\\s+(.+)$`, 'gm'))].map((m) => m[1].trim());
  const search = s.dnsSearch?.length ? s.dnsSearch : lines('search').flatMap((l) => l.split(/\s+/));
  const options = s.dnsOptions?.length ? s.dnsOptions : lines('options').flatMap((l) => l.split(/\s+/));
  let servers: string[];
  if (s.nameserver) servers = [s.nameserver];
  else if (s.dns?.length) servers = s.dns;
  else {
    servers = lines('nameserver').filter((n) => !n.startsWith('127.') && n !== '::1');
    if (servers.length === 0) servers = ['8.8.8.8', '8.8.4.4'];
  }
  const out = servers.map((n) => `nameserver ${n}`);
  if (search.length) out.push(`search ${search.join(' ')}`);
  if (options.length) out.push(`options ${options.join(' ')}`);
  return out.join('\n') + '\n';
}

/** Writes the three files and returns the binds that put them in place. */
export async function writeContainerFiles(s: FilesSpec): Promise<MountSpec[]> {
  await mkdir(s.dir, { recursive: true });
  const files: [string, string][] = [
    ['hosts', hostsFile(s)],
    ['resolv.conf', resolvConf(s)],
    ['hostname', `${s.hostname}\n`],
  ];
  await Promise.all(files.map(([name, text]) => writeFile(join(s.dir, name), text)));
  return files.map(([name]) => ({ type: 'bind' as const, source: join(s.dir, name), target: `/etc/${name}` }));
}

/**
 * Points a resolv.conf at an embedded DNS unless it already uses one: rewritten in place (same
 * inode), so the container's bind mount shows the change at once.
 */
export async function useEmbeddedDns(path: string, nameserver: string, embedded: Set<string>): Promise<void> {
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) return;
  const servers = [...text.matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]);
  if (servers.some((s) => embedded.has(s))) return;
  await writeFile(path, [`nameserver ${nameserver}`, ...text.split('\n').filter((l) => l && !l.startsWith('nameserver'))].join('\n') + '\n');
}
