// The HostConfig fields that shape the container's process: capabilities, a read-only root,
// sysctls, CPU, pids and memory limits (Memory itself is parsed in config.ts), checked with dockerd's
// messages, stored as docker shows them in inspect, and turned into the runtime's spec.
import { cpus } from 'node:os';
import { KrError } from '../../util/errors.ts';
import { isCapability } from '../../runtime/ns/capabilities.ts';
import type { ContainerSpec, Resources } from '../../runtime/runtime.ts';
import { parseSysctls, sysctlsFor } from './sysctls.ts';

export interface HostResources {
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  ReadonlyRootfs: boolean;
  Privileged: boolean;
  /** null: no limit (docker's -1 and 0 mean the same). */
  PidsLimit: number | null;
  NanoCpus: number;
  CpuShares: number;
  CpuQuota: number;
  CpuPeriod: number;
  /** Only when set (dockerd leaves it out of inspect otherwise). */
  Sysctls?: Record<string, string>;
}

/** An integer field of a request body; absent or null is 0. */
export function int(h: Record<string, unknown>, k: string): number {
  const v = h[k];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new KrError('invalid', `${k} must be an integer`);
  return v;
}

function caps(h: Record<string, unknown>, k: 'CapAdd' | 'CapDrop'): string[] | null {
  const v = h[k];
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new KrError('invalid', `${k} must be a list of strings`);
  for (const c of v as string[]) if (!isCapability(c)) throw new KrError('invalid', `invalid ${k}: unknown capability: "${c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`}"`);
  return v.length ? (v as string[]) : null;
}

export function parseHostResources(h: Record<string, unknown>): HostResources {
  if (h.Privileged !== undefined && h.Privileged !== null && typeof h.Privileged !== 'boolean') throw new KrError('invalid', 'Privileged must be a boolean');
  if (h.Privileged === true) throw new KrError('invalid', 'privileged containers are not supported by krd (the ns runtime keeps docker\'s default confinement); use --cap-add for what the container needs');
  if (h.ReadonlyRootfs !== undefined && h.ReadonlyRootfs !== null && typeof h.ReadonlyRootfs !== 'boolean') throw new KrError('invalid', 'ReadonlyRootfs must be a boolean');
  const nano = int(h, 'NanoCpus');
  const period = int(h, 'CpuPeriod');
  const quota = int(h, 'CpuQuota');
  const shares = int(h, 'CpuShares');
  const pids = int(h, 'PidsLimit');
  const n = cpus().length;
  const sysctls = parseSysctls(h);
  if (nano > 0 && period > 0) throw new KrError('invalid', 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano > 0 && quota > 0) throw new KrError('invalid', 'Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (nano < 0 || nano > n * 1e9 || (nano > 0 && nano < 1e7)) throw new KrError('invalid', `Range of CPUs is from 0.01 to ${n}.00, as there are only ${n} CPUs available`);
  if (period !== 0 && (period < 1000 || period > 1_000_000)) throw new KrError('invalid', 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (quota !== 0 && quota !== -1 && quota < 1000) throw new KrError('invalid', 'CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (shares < 0) throw new KrError('invalid', `invalid CPU shares (${shares}): value must be a positive integer`);
  return {
    CapAdd: caps(h, 'CapAdd'),
    CapDrop: caps(h, 'CapDrop'),
    ReadonlyRootfs: h.ReadonlyRootfs === true,
    Privileged: false,
    PidsLimit: pids > 0 ? pids : null,
    NanoCpus: nano,
    CpuShares: shares,
    CpuQuota: quota,
    CpuPeriod: period,
    ...(sysctls ? { Sysctls: sysctls } : {}),
  };
}

/** What the runtime's spec takes from them (with Memory). */
export function runtimeSpecOf(h: Partial<HostResources> & { Memory?: number; NetworkMode?: string }): Pick<ContainerSpec, 'capAdd' | 'capDrop' | 'readonlyRootfs' | 'resources' | 'sysctls'> {
  const r: Resources = {};
  if (h.Memory) r.memoryBytes = h.Memory;
  if (h.NanoCpus) r.nanoCpus = h.NanoCpus;
  // a quota over a period is the same share of a CPU as NanoCpus
  else if (h.CpuQuota && h.CpuQuota > 0) r.nanoCpus = Math.round((h.CpuQuota / (h.CpuPeriod || 100_000)) * 1e9);
  if (h.CpuShares) r.cpuShares = Math.min(262_144, Math.max(2, h.CpuShares));
  if (h.PidsLimit) r.pidsLimit = h.PidsLimit;
  return {
    capAdd: h.CapAdd ?? undefined,
    capDrop: h.CapDrop ?? undefined,
    readonlyRootfs: !!h.ReadonlyRootfs,
    resources: Object.keys(r).length ? r : undefined,
    sysctls: sysctlsFor(h),
  };
}
