// docker update (POST /containers/{id}/update): new memory, CPU and pids limits, and a new
// restart policy. Zero or absent means "as it was", as with dockerd; the limits reach the
// container at once when it runs, else at its next start; inspect shows them from now on.
import { KrError } from '../../util/errors.ts';
import type { Resources, Runtime } from '../../runtime/runtime.ts';
import type { HostConfig } from './config.ts';
import { int, parseHostResources, runtimeSpecOf } from './host-resources.ts';
import { parseRestartPolicy } from './restart-policy.ts';
import type { ContainerService } from './service.ts';

/** Fields of docker's UpdateConfig krd has no knob for: refused when set, ignored when empty. */
const UNSUPPORTED = ['BlkioWeight', 'CpusetCpus', 'CpusetMems', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'KernelMemory', 'MemoryReservation', 'KernelMemoryTCP', 'MemorySwappiness'];
const MIN_MEMORY = 6 * 1024 * 1024;

const isSet = (v: unknown) => v !== undefined && v !== null && v !== 0 && v !== '' && !(Array.isArray(v) && v.length === 0);

/** The container's HostConfig with the update applied, checked as at create; and what changes for the runtime. */
export function applyUpdate(hc: HostConfig, body: unknown): { hostConfig: HostConfig; resources: Resources } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new KrError('invalid', 'the update body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of UNSUPPORTED) if (isSet(b[k])) throw new KrError('invalid', `updating ${k} is not supported by krd`);
  const next: HostConfig = { ...hc };
  const memory = int(b, 'Memory');
  if (memory < 0 || (memory > 0 && memory < MIN_MEMORY)) throw new KrError('invalid', 'Minimum memory limit allowed is 6MB');
  if (memory) next.Memory = memory;
  const nano = int(b, 'NanoCpus');
  const quota = int(b, 'CpuQuota');
  const period = int(b, 'CpuPeriod');
  // one way of limiting CPU replaces the other
  if (nano) Object.assign(next, { NanoCpus: nano, CpuQuota: 0, CpuPeriod: 0 });
  if (quota || period) Object.assign(next, { NanoCpus: 0, CpuQuota: quota || next.CpuQuota, CpuPeriod: period || next.CpuPeriod });
  const shares = int(b, 'CpuShares');
  if (shares) next.CpuShares = shares;
  const pids = b.PidsLimit === undefined || b.PidsLimit === null ? undefined : int(b, 'PidsLimit');
  if (pids !== undefined) next.PidsLimit = pids > 0 ? pids : null;
  if (isSet((b.RestartPolicy as { Name?: unknown } | undefined)?.Name)) {
    if (hc.AutoRemove) throw new KrError('invalid', 'Restart policy cannot be updated because AutoRemove is enabled for the container');
    next.RestartPolicy = parseRestartPolicy(b.RestartPolicy, false);
  }
  Object.assign(next, parseHostResources(next as unknown as Record<string, unknown>));
  const resources = runtimeSpecOf(next).resources ?? {};
  if (pids !== undefined && pids <= 0) resources.pidsLimit = -1;
  return { hostConfig: next, resources };
}

export class ContainerUpdates {
  private readonly containers: ContainerService;
  private readonly runtime: Runtime;

  constructor(containers: ContainerService, runtime: Runtime) {
    this.containers = containers;
    this.runtime = runtime;
  }

  async update(ref: string, body: unknown): Promise<{ Warnings: string[] }> {
    const r = this.containers.resolve(ref);
    const { hostConfig, resources } = applyUpdate(r.hostConfig, body);
    if (Object.keys(resources).length) await (await this.runtime.reattach(r.id)).update(resources);
    this.containers.records.setHostConfig(r.id, hostConfig);
    this.containers.event(r, 'update');
    return { Warnings: [] };
  }
}
