// What a container's spec becomes for its pod VM: krd's network files travel in the launch spec,
// binds become virtiofs shares, krd's network namespace becomes the VM's eth0.
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { KrError } from '../../util/errors.ts';
import type { PodMount } from '../../guest/vdocker/create.ts';
import type { Share } from '../../vm/virtiofs.ts';
import type { LaunchEtc } from '../../vm/launch-spec.ts';
import type { ContainerSpec, MountSpec } from '../runtime.ts';
import type { PodNetwork } from './pod-vm.ts';

export const NETWORK_FILES = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

/**
 * krd's network files (hosts, resolv.conf; bound into ns containers) travel to the guest in the
 * launch spec instead: init writes them and vdocker binds them into the pod's containers. The
 * hostname file is the launch spec's hostname.
 */
export async function etcOf(mounts: MountSpec[]): Promise<LaunchEtc> {
  const text = (target: string) => {
    const m = mounts.find((x) => x.type === 'bind' && x.target === target);
    return m && m.type === 'bind' ? readFile(m.source, 'utf8').catch(() => undefined) : undefined;
  };
  const [hosts, resolvConf] = await Promise.all([text('/etc/hosts'), text('/etc/resolv.conf')]);
  return { ...(hosts !== undefined ? { hosts } : {}), ...(resolvConf !== undefined ? { resolvConf } : {}) };
}

/** krd's network namespace (bridge, user networks) becomes the VM's eth0; host: the VM's own network. */
export function podNetworkOf(n: ContainerSpec['network']): PodNetwork {
  if (n === undefined || n === 'none') return { mode: 'none' };
  if (n === 'host') return { mode: 'user' };
  return { mode: 'netns', path: n.netnsPath };
}

/**
 * Binds (docker's -v, --mount type=bind, named volumes) become virtiofs shares of the pod VM, one
 * per bind, and vdocker binds the share into the container; tmpfs mounts pass as they are. A file
 * is shared alone, without its directory (src/vm/virtiofs.ts).
 */
export function sharedMounts(list: MountSpec[]): { shares: Share[]; mounts: PodMount[] } {
  const shares: Share[] = [];
  const mounts = list.map((m): PodMount => {
    if (m.type !== 'bind') return m;
    let st;
    try {
      st = statSync(m.source);
    } catch {
      throw new KrError('invalid', `bind source ${m.source}: it does not exist`);
    }
    if (!st.isDirectory() && !st.isFile()) throw new KrError('invalid', `bind source ${m.source}: only directories and regular files can be bound into a VM pod`);
    const tag = `b${shares.length}`;
    shares.push({ tag, source: m.source, readonly: !!m.readonly, ...(st.isFile() ? { file: true } : {}) });
    return { type: 'share', tag, target: m.target, readonly: !!m.readonly, ...(m.populate ? { populate: true } : {}) };
  });
  return { shares, mounts };
}
