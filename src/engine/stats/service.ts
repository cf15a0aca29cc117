// docker top and docker stats on the daemon's side: the runtime's Container.top and
// Container.stats, shaped as dockerd answers them (ContainerTopOKBody, and the StatsJSON that
// `docker stats` turns into CPU % and MEM USAGE / LIMIT: it divides the container's CPU time
// delta by the host's CPU time delta between two samples, times online_cpus).
import { readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { KrError } from '../../util/errors.ts';
import type { Runtime, Stats } from '../../runtime/runtime.ts';
import type { ContainerService } from '../containers/service.ts';
import type { ContainerRecord } from '../containers/records.ts';
import { sleep } from '../../util/sleep.ts';

const ZERO_TIME = '0001-01-01T00:00:00Z';
const NANOS_PER_TICK = 1e9 / 100; // USER_HZ is 100 on Linux

/** Host CPU time in nanoseconds, as dockerd computes system_cpu_usage from /proc/stat. */
async function systemCpuNanos(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  // user nice system idle iowait irq softirq steal (guest time is already in user/nice)
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return ticks.reduce((a, b) => a + b, 0) * NANOS_PER_TICK;
}

interface Sample {
  stats: Stats;
  system: number;
}

function cpuJson(s: Sample | null, online: number): object {
  return {
    cpu_usage: { total_usage: s?.stats.cpuNanos ?? 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
    ...(s ? { system_cpu_usage: s.system, online_cpus: online } : {}),
    throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
  };
}

/** docker's StatsJSON for one sample, with the previous one as precpu. */
function statsJson(r: ContainerRecord, cur: Sample | null, pre: Sample | null): object {
  const online = cpus().length;
  return {
    name: `/${r.name}`,
    id: r.id,
    read: cur ? cur.stats.read.toISOString() : ZERO_TIME,
    preread: pre ? pre.stats.read.toISOString() : ZERO_TIME,
    pids_stats: cur ? { current: cur.stats.pids } : {},
    blkio_stats: { io_service_bytes_recursive: null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuJson(cur, online),
    precpu_stats: cpuJson(pre, online),
    // no limit: the host's memory, as dockerd reports it
    memory_stats: cur ? { usage: cur.stats.memory.usage, stats: cur.stats.memory.stats ?? {}, limit: cur.stats.memory.limit ?? totalmem() } : {},
    ...(cur?.stats.networks ? { networks: cur.stats.networks } : {}),
  };
}

export class StatsService {
  private readonly containers: ContainerService;
  private readonly runtime: Runtime;

  constructor(containers: ContainerService, runtime: Runtime) {
    this.containers = containers;
    this.runtime = runtime;
  }

  async top(ref: string, psArgs: string): Promise<{ Titles: string[]; Processes: string[][] }> {
    const r = this.containers.resolve(ref);
    if (r.state !== 'running') throw new KrError('conflict', `Container ${r.id} is not running`);
    const args = psArgs.trim() === '' ? [] : psArgs.trim().split(/\s+/);
    const { titles, processes } = await (await this.runtime.reattach(r.id)).top(args);
    return { Titles: titles, Processes: processes };
  }

  /**
   * Samples once a second (as dockerd's collector does) until the client leaves or the container
   * stops. Not streaming: the second sample (so precpu is set and the CLI can compute CPU %);
   * one-shot: the first at once. A container that is not running gives one all-zero sample.
   */
  async *stats(ref: string, opts: { stream: boolean; oneShot: boolean; signal: AbortSignal }): AsyncGenerator<object> {
    const r = this.containers.resolve(ref);
    if (r.state !== 'running') {
      yield statsJson(r, null, null);
      return;
    }
    const c = await this.runtime.reattach(r.id);
    const sample = async (): Promise<Sample> => ({ stats: await c.stats(), system: await systemCpuNanos() });
    let pre: Sample | null = null;
    let cur = await sample();
    if (!opts.stream && !opts.oneShot) {
      await sleep(1000, opts.signal);
      [pre, cur] = [cur, await sample()];
    }
    for (;;) {
      yield statsJson(r, cur, pre);
      if (!opts.stream || opts.signal.aborted) return;
      await sleep(1000, opts.signal);
      if (opts.signal.aborted || this.containers.records.get(r.id)?.state !== 'running') return;
      [pre, cur] = [cur, await sample()];
    }
  }
}
