// Capabilities as docker grants them: its default set, with --cap-add/--cap-drop applied,
// as the 64-bit mask krd-shim takes.
import { KrError } from '../../util/errors.ts';

// Numbers from linux/capability.h.
const CAPS: Record<string, number> = {
  CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8,
  LINUX_IMMUTABLE: 9, NET_BIND_SERVICE: 10, NET_BROADCAST: 11, NET_ADMIN: 12, NET_RAW: 13, IPC_LOCK: 14,
  IPC_OWNER: 15, SYS_MODULE: 16, SYS_RAWIO: 17, SYS_CHROOT: 18, SYS_PTRACE: 19, SYS_PACCT: 20, SYS_ADMIN: 21,
  SYS_BOOT: 22, SYS_NICE: 23, SYS_RESOURCE: 24, SYS_TIME: 25, SYS_TTY_CONFIG: 26, MKNOD: 27, LEASE: 28,
  AUDIT_WRITE: 29, AUDIT_CONTROL: 30, SETFCAP: 31, MAC_OVERRIDE: 32, MAC_ADMIN: 33, SYSLOG: 34, WAKE_ALARM: 35,
  BLOCK_SUSPEND: 36, AUDIT_READ: 37, PERFMON: 38, BPF: 39, CHECKPOINT_RESTORE: 40,
};

/** Docker's default set (moby oci/caps/defaults.go lists these names). */
export const DOCKER_DEFAULT_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'];

/** Whether docker would take this name for --cap-add/--cap-drop ("NET_RAW", "cap_net_raw", "ALL"). */
export function isCapability(name: string): boolean {
  return name.toUpperCase() === 'ALL' || CAPS[name.toUpperCase().replace(/^CAP_/, '')] !== undefined;
}

function capNumber(name: string): number {
  const n = CAPS[name.toUpperCase().replace(/^CAP_/, '')];
  if (n === undefined) throw new KrError('invalid', `unknown capability: ${name}`);
  return n;
}

export function capabilityMask(add: string[] = [], drop: string[] = []): bigint {
  const all = Object.values(CAPS).reduce((m, n) => m | (1n << BigInt(n)), 0n);
  let mask = DOCKER_DEFAULT_CAPS.reduce((m, c) => m | (1n << BigInt(capNumber(c))), 0n);
  // docker applies drops then adds; ALL on either side means every capability
  if (drop.some((c) => c.toUpperCase() === 'ALL')) mask = 0n;
  else for (const c of drop) mask &= ~(1n << BigInt(capNumber(c)));
  if (add.some((c) => c.toUpperCase() === 'ALL')) mask = all;
  else for (const c of add) mask |= 1n << BigInt(capNumber(c));
  return mask;
}
