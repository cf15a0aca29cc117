// Linux bridges and veth pairs, through `ip -batch` (two short-lived processes per container:
// measured ≈ 5 ms each here, so no netlink code of our own). Device names are derived from a
// hash of the data root, so krds sharing a network namespace never touch each other's devices.
import { formatIp, macFor, type Cidr } from './ipv4.ts';
import { ipBatch, run } from './cmd.ts';
import { createNetns, ownNetns } from './netns.ts';

/** Creates the bridge with its gateway address, up (an existing one is kept as it is). */
export async function ensureBridge(name: string, gateway: number, subnet: Cidr): Promise<void> {
  if (await linkExists(name)) return;
  await ipBatch([`link add ${name} type bridge`, `addr add ${formatIp(gateway)}/${subnet.bits} dev ${name}`, `link set ${name} up`]).catch(async (err) => {
    await deleteLink(name);
    throw err;
  });
}

export async function linkExists(name: string): Promise<boolean> {
  return run(['ip', 'link', 'show', 'dev', name]).then(() => true, () => false);
}

export async function deleteLink(name: string): Promise<void> {
  await run(['ip', 'link', 'del', 'dev', name]).catch(() => undefined);
}

/** Names of the devices in krd's namespace that start with prefix. */
export async function linksWithPrefix(prefix: string): Promise<string[]> {
  const out = await run(['ip', '-o', 'link', 'show']).catch(() => '');
  return out
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
    .filter((n): n is string => !!n && n.startsWith(prefix));
}

export interface VethSpec {
  netns: string;
  /** Name inside the container (eth0, eth1…). */
  ifname: string;
  /** Name on krd's side, enslaved to the bridge. */
  hostIfname: string;
  bridge: string;
  ip: number;
  subnet: Cidr;
  /** Default route via this address (the container's first network). */
  gateway?: number;
}

/**
 * A veth pair from the container's namespace to the bridge, addressed and up. With `create`, the
 * namespace is made by the same process that configures its inside (`unshare --net=FILE ip
 * -batch`): two processes per container in all, the other one enslaving krd's end to the bridge.
 */
export async function attachVeth(v: VethSpec, opts: { create?: boolean } = {}): Promise<void> {
  const inside = [
    'link set lo up',
    `link add ${v.ifname} address ${macFor(v.ip)} type veth peer name ${v.hostIfname} netns ${ownNetns()}`,
    `addr add ${formatIp(v.ip)}/${v.subnet.bits} dev ${v.ifname}`,
    `link set ${v.ifname} up`,
  ];
  if (v.gateway !== undefined) inside.push(`route replace default via ${formatIp(v.gateway)} dev ${v.ifname}`);
  try {
    if (opts.create) await createNetns(v.netns, inside);
    else await ipBatch(inside, { netns: v.netns });
    await ipBatch([`link set dev ${v.hostIfname} master ${v.bridge} up`]);
  } catch (err) {
    await deleteLink(v.hostIfname);
    throw err;
  }
}
