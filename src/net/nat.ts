// Outbound traffic of bridge networks: IP forwarding on and, per bridge, MASQUERADE of its
// subnet leaving by any other device plus FORWARD accepts (a host whose FORWARD policy is DROP,
// as docker leaves it, would drop them). The rules sit in chains named after the data root
// hash, jumped to from POSTROUTING/FORWARD, so krds sharing a namespace keep to their own.
import { writeFile } from 'node:fs/promises';
import { formatCidr, type Cidr } from './ipv4.ts';
import { run } from './cmd.ts';

const ipt = (table: string, args: string[]) => run(['iptables', '-w', '5', '-t', table, ...args]);

async function ensureChain(table: string, chain: string, from: string): Promise<void> {
  await ipt(table, ['-N', chain]).catch(() => undefined);
  const jump = ['-j', chain];
  if (!(await ipt(table, ['-C', from, ...jump]).then(() => true, () => false))) await ipt(table, ['-I', from, ...jump]);
}

/**
 * Per bridge: traffic inside it passes; to the other bridges of this krd (`family`, an iptables
 * wildcard like kr1a2b3c+) it is dropped, as docker isolates its networks; out of krd's
 * namespace it is masqueraded (not for --internal networks).
 */
function rules(bridge: string, family: string, subnet: Cidr, internal: boolean): [table: string, spec: string[]][] {
  const out: [string, string[]][] = [
    ['filter', ['-i', bridge, '-o', bridge, '-j', 'ACCEPT']],
    ['filter', ['-i', bridge, '-o', family, '-j', 'DROP']],
  ];
  if (internal) return [...out, ['filter', ['-i', bridge, '-j', 'DROP']], ['filter', ['-o', bridge, '-j', 'DROP']]];
  return [
    ...out,
    ['nat', ['-s', formatCidr(subnet), '!', '-o', bridge, '-j', 'MASQUERADE']],
    ['filter', ['-i', bridge, '!', '-o', bridge, '-j', 'ACCEPT']],
    ['filter', ['-o', bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT']],
  ];
}

export async function enableNat(chain: string, bridge: string, family: string, subnet: Cidr, internal: boolean): Promise<void> {
  if (!internal) await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
  await ensureChain('nat', chain, 'POSTROUTING');
  await ensureChain('filter', chain, 'FORWARD');
  for (const [table, spec] of rules(bridge, family, subnet, internal)) {
    if (!(await ipt(table, ['-C', chain, ...spec]).then(() => true, () => false))) await ipt(table, ['-A', chain, ...spec]);
  }
}

export async function disableNat(chain: string, bridge: string, family: string, subnet: Cidr, internal: boolean): Promise<void> {
  for (const [table, spec] of rules(bridge, family, subnet, internal)) await ipt(table, ['-D', chain, ...spec]).catch(() => undefined);
}

/** Drops both chains and their jumps (when the last bridge network of this krd is gone). */
export async function removeChains(chain: string): Promise<void> {
  for (const [table, from] of [['nat', 'POSTROUTING'], ['filter', 'FORWARD']]) {
    await ipt(table, ['-D', from, '-j', chain]).catch(() => undefined);
    await ipt(table, ['-F', chain]).catch(() => undefined);
    await ipt(table, ['-X', chain]).catch(() => undefined);
  }
}
