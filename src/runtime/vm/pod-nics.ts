// The networks a pod's container joins after its VM booted (docker network connect, or a create
// with several networks): each veth krd puts into the container's namespace besides eth0 gets a tap
// of its own beside it, redirected both ways as eth0's is (src/net/tap-redirect.ts), and the tap
// becomes a virtio-net-pci NIC hot-plugged into the running qemu over QMP: virtio-mmio (the
// boot NICs) cannot be hot-plugged, so a pod on krd's networks boots with PCIe root ports hp0…
// (src/vm/qemu.ts). The guest's cradle-nic (through vdocker) gives the NIC the veth's name, MAC,
// address and MTU; no default route (eth0 keeps it), as docker does. A veth that went (docker
// network disconnect) takes its NIC with it: the guest powers off the slot, qemu unplugs the
// device, the netdev and the tap go. Which veth has which slot is kept in <pod dir>/nics.json.
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KrError } from '../../util/errors.ts';
import { run } from '../../net/cmd.ts';
import { readLink, redirectToTap, removeTap } from '../../net/tap-redirect.ts';
import { call, type Endpoint } from './vdocker-client.ts';

const TAPFD = fileURLToPath(new URL('../../../build/krd-tapfd', import.meta.url));
/** qemu's QMP socket, in the pod dir (qemu runs there). */
export const QMP_SOCKET = 'qmp.sock';
/** Hot-plug slots a pod boots with: the networks it can join while it runs (each slot costs boot time). */
export const NIC_SLOTS = 4;
/** The boot NIC's veth: carried by tap0 from the start (./pod-vm.ts). */
const BOOT_VETH = 'eth0';
const IFNAME = /^eth[0-9]{1,4}$/;

interface PluggedNic {
  slot: number;
  tap: string;
}

type NicTable = Record<string, PluggedNic>;

/** The pod whose NICs follow its namespace. */
export interface NicPod {
  dir: string;
  netns: string;
  ep: Endpoint;
  /** qemu still runs. */
  alive: () => boolean;
  /** krd's resolv.conf of the container, sent along with a new NIC (its network's DNS). */
  resolvConf?: string;
}

/** One QMP conversation through krd-tapfd (the tap of NETNS, when given, rides on the first command); qemu's replies in order. */
async function qmp(pod: NicPod, commands: (object | string)[], tap?: string): Promise<{ ok: boolean; error?: string }[]> {
  const lines = commands.map((c) => (typeof c === 'string' ? c : JSON.stringify(c)));
  const out = await run([TAPFD, '--qmp', join(pod.dir, QMP_SOCKET), ...(tap ? [pod.netns, tap] : [])], lines.join('\n') + '\n');
  return out
    .split('\n')
    .filter((l) => l.startsWith('{"return"') || l.startsWith('{"error"'))
    .map((l) => {
      const v = JSON.parse(l) as { error?: { desc?: string } };
      return v.error ? { ok: false, error: String(v.error.desc ?? 'error') } : { ok: true };
    });
}

async function readTable(dir: string): Promise<NicTable> {
  const text = await readFile(join(dir, 'nics.json'), 'utf8').catch(() => '{}');
  const v = JSON.parse(text) as NicTable;
  // written by krd itself; names checked anyway, since they go into commands
  return Object.fromEntries(Object.entries(v).filter(([k, n]) => IFNAME.test(k) && Number.isInteger(n?.slot) && /^t-eth[0-9]{1,4}$/.test(n?.tap)));
}

async function writeTable(dir: string, t: NicTable): Promise<void> {
  await writeFile(join(dir, 'nics.json.tmp'), JSON.stringify(t));
  await rename(join(dir, 'nics.json.tmp'), join(dir, 'nics.json'));
}

/** The veths in the namespace besides the boot NIC's. */
async function extraVeths(netns: string): Promise<string[]> {
  const links = JSON.parse(await run(['nsenter', `--net=${netns}`, 'ip', '-j', 'link', 'show', 'type', 'veth'])) as { ifname?: string }[];
  return links.map((l) => l.ifname ?? '').filter((n) => IFNAME.test(n) && n !== BOOT_VETH);
}

const ids = (ifname: string) => ({ netdev: `net-${ifname}`, device: `nic-${ifname}` });

async function plug(pod: NicPod, ifname: string, table: NicTable): Promise<void> {
  const used = new Set(Object.values(table).map((n) => n.slot));
  let slot = 0;
  while (used.has(slot)) slot++;
  if (slot >= NIC_SLOTS) throw new KrError('unavailable', `${pod.ep.label}: no free hot-plug slot for ${ifname} (a VM pod joins at most ${NIC_SLOTS} networks besides its first while it runs)`);
  const link = await readLink(pod.netns, ifname);
  const tap = `t-${ifname}`;
  await removeTap(pod.netns, ifname, tap); // a leftover of an attempt that did not finish
  await redirectToTap(pod.netns, ifname, tap, link.mtu);
  const { netdev, device } = ids(ifname);
  try {
    const replies = await qmp(pod, [
      { execute: 'getfd', arguments: { fdname: netdev } },
      { execute: 'netdev_add', arguments: { type: 'tap', id: netdev, fd: netdev } },
      { execute: 'device_add', arguments: { driver: 'virtio-net-pci', id: device, netdev, bus: `hp${slot}`, mac: link.mac } },
    ], tap);
    const bad = replies.find((r) => !r.ok);
    if (replies.length !== 3 || bad) throw new KrError('unavailable', `${pod.ep.label}: qemu did not plug ${ifname}: ${bad?.error ?? 'no answer'}`);
    table[ifname] = { slot, tap };
    await writeTable(pod.dir, table);
    const resolvConf = pod.resolvConf ? await readFile(pod.resolvConf, 'utf8').catch(() => undefined) : undefined;
    const body = { name: ifname, mac: link.mac, address: link.address, mtu: link.mtu, ...(resolvConf !== undefined ? { resolvConf } : {}) };
    await call(pod.ep, 'POST', '/kraud/nics', { body: Buffer.from(JSON.stringify(body)), deadlineMs: 120_000 });
  } catch (err) {
    await unplug(pod, ifname, { slot, tap }, table);
    throw err;
  }
}

async function unplug(pod: NicPod, ifname: string, nic: PluggedNic, table: NicTable): Promise<void> {
  const { netdev, device } = ids(ifname);
  if (pod.alive()) {
    // the guest powers the slot off, qemu unplugs the device then; device_del is for a guest that did not
    await call(pod.ep, 'DELETE', `/kraud/nics/${ifname}`, { deadlineMs: 30_000 }).catch(() => undefined);
    await qmp(pod, [{ execute: 'device_del', arguments: { id: device } }, `wait 30 "device": "${device}"`, { execute: 'netdev_del', arguments: { id: netdev } }]).catch(() => undefined);
  }
  await removeTap(pod.netns, ifname, nic.tap);
  delete table[ifname];
  await writeTable(pod.dir, table);
}

const queues = new Map<string, Promise<void>>();

/**
 * Brings the pod's hot-plugged NICs in line with the veths of its namespace; one change at a time
 * per pod. Pods without a QMP socket (no hot-plug: --network host or none, host pods) are left alone.
 */
export function syncNics(pod: NicPod): Promise<void> {
  const job = (queues.get(pod.dir) ?? Promise.resolve()).then(async () => {
    if (!existsSync(join(pod.dir, QMP_SOCKET))) return;
    const table = await readTable(pod.dir);
    const want = pod.alive() ? await extraVeths(pod.netns) : [];
    for (const [ifname, nic] of Object.entries(table)) if (!want.includes(ifname)) await unplug(pod, ifname, nic, table);
    for (const ifname of want) if (!table[ifname]) await plug(pod, ifname, table);
  });
  const settled = job.catch(() => undefined);
  queues.set(pod.dir, settled);
  void settled.then(() => queues.get(pod.dir) === settled && queues.delete(pod.dir));
  return job;
}
