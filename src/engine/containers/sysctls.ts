// docker run --sysctl: HostConfig.Sysctls, checked as runc checks them (a container may only set
// the sysctls of a kernel namespace it has of its own), plus the two that dockerd sets for every
// container with a network namespace of its own (moby 20.10+): ping without CAP_NET_RAW, and
// ports below 1024 without CAP_NET_BIND_SERVICE. The runtime writes them in the container's
// namespaces before its process starts.
import { KrError } from '../../util/errors.ts';

/** dockerd's defaults; what the user sets wins. */
const OWN_NETNS_DEFAULTS: Record<string, string> = {
  'net.ipv4.ip_unprivileged_port_start': '0',
  'net.ipv4.ping_group_range': '0 2147483647',
};

// System V IPC and POSIX message queues live in the IPC namespace, which each container has
const IPC_KEYS = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

const KEY = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_-]+)+$/;

/** The containers whose network namespace is not their own to configure: the host's or another container's. */
function sharedNetns(mode: unknown): boolean {
  return mode === 'host' || (typeof mode === 'string' && mode.startsWith('container:'));
}

/** HostConfig.Sysctls as sent (null when none), each checked: a 400 naming the first bad one. */
export function parseSysctls(h: Record<string, unknown>): Record<string, string> | null {
  const v = h.Sysctls;
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw new KrError('invalid', 'Sysctls must be an object of strings');
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(v)) {
    if (typeof value !== 'string') throw new KrError('invalid', `sysctl ${JSON.stringify(key)}: the value must be a string`);
    if (!KEY.test(key)) throw new KrError('invalid', `sysctl ${JSON.stringify(key)}: not a sysctl name (dot-separated words, as in net.core.somaxconn)`);
    if (/[\0\n]/.test(value) || value.length > 4096) throw new KrError('invalid', `sysctl ${key}: the value must be one line of at most 4096 characters`);
    if (key === 'kernel.hostname') throw new KrError('invalid', 'sysctl kernel.hostname is not allowed: set the hostname with --hostname');
    if (key.startsWith('net.')) {
      if (h.NetworkMode === 'host') throw new KrError('invalid', `sysctl ${JSON.stringify(key)} is not allowed in the host's network namespace (--network host)`);
    } else if (!IPC_KEYS.includes(key) && !key.startsWith('fs.mqueue.') && key !== 'kernel.domainname') {
      throw new KrError('invalid', `sysctl ${JSON.stringify(key)} is not in a separate kernel namespace`);
    }
    out[key] = value;
  }
  return Object.keys(out).length ? out : null;
}

/** What the runtime writes: dockerd's defaults for a network namespace of the container's own, then the user's. */
export function sysctlsFor(h: { Sysctls?: Record<string, string>; NetworkMode?: string }): Record<string, string> | undefined {
  const all = { ...(sharedNetns(h.NetworkMode) ? {} : OWN_NETNS_DEFAULTS), ...(h.Sysctls ?? {}) };
  return Object.keys(all).length ? all : undefined;
}
