// A microVM on a container's network: a tap device in the container's namespace, wired to its veth
// (eth0, on krd's bridge) both ways by tc — an ingress qdisc on each with a match-all u32 filter whose
// action is `mirred egress redirect` to the other (Kata Containers' "tcfilter" mode). Every frame
// arriving on the veth leaves through the tap into the guest and every frame from the guest leaves
// through the veth, before the namespace's own stack sees it: the guest is on the bridge with the
// container's MAC and address, and cannot use the namespace to route, answer or reach anything else.
import { KrError } from '../util/errors.ts';
import { ipBatch, run } from './cmd.ts';

/** What the guest takes over from the veth krd made. */
export interface LinkConfig {
  mac: string;
  /** address/prefix */
  address: string;
  gateway?: string;
  mtu: number;
}

/** The veth's MAC, first IPv4 address, MTU and the namespace's default gateway (read before the guest exists). */
export async function readLink(netns: string, ifname: string): Promise<LinkConfig> {
  const ip = (args: string[]) => run(['nsenter', `--net=${netns}`, 'ip', '-j', ...args]);
  const [links, routes] = await Promise.all([ip(['addr', 'show', 'dev', ifname]), ip(['-4', 'route', 'show', 'default'])]);
  const link = (JSON.parse(links) as { address?: string; mtu?: number; addr_info?: { family: string; local: string; prefixlen: number }[] }[])[0];
  const v4 = link?.addr_info?.find((a) => a.family === 'inet');
  if (!link?.address || !v4) throw new KrError('unavailable', `${ifname} in ${netns} has no MAC or IPv4 address`);
  const gateway = (JSON.parse(routes) as { gateway?: string }[])[0]?.gateway;
  return { mac: link.address, address: `${v4.local}/${v4.prefixlen}`, ...(gateway ? { gateway } : {}), mtu: link.mtu ?? 1500 };
}

/** Creates tap (persistent, up) in the namespace and redirects all traffic between it and ifname. */
export async function redirectToTap(netns: string, ifname: string, tap: string, mtu: number): Promise<void> {
  const taken = await run(['nsenter', `--net=${netns}`, 'ip', 'link', 'show', 'dev', tap]).then(() => true, () => false);
  if (taken) throw new KrError('conflict', `that network namespace carries a VM already (${tap}): two VM pods cannot share one`);
  await ipBatch([`tuntap add dev ${tap} mode tap vnet_hdr`, `link set dev ${tap} mtu ${mtu} up`], { netns });
  const redirect = (from: string, to: string) => [`qdisc add dev ${from} ingress`, `filter add dev ${from} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev ${to}`];
  try {
    await run(['nsenter', `--net=${netns}`, 'tc', '-batch', '-'], [...redirect(ifname, tap), ...redirect(tap, ifname)].join('\n') + '\n');
  } catch (err) {
    await removeTap(netns, ifname, tap);
    throw err;
  }
}

/** Undoes redirectToTap (the namespace going away does the same). */
export async function removeTap(netns: string, ifname: string, tap: string): Promise<void> {
  await run(['nsenter', `--net=${netns}`, 'tc', 'qdisc', 'del', 'dev', ifname, 'ingress']).catch(() => undefined);
  await ipBatch([`link del dev ${tap}`], { netns, force: true }).catch(() => undefined);
}
