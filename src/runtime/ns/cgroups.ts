// Cgroup limits and accounting for one container, on whatever the host mounts: cgroup v2
// alone (cgroup.controllers at the top), or v1 controllers, each its own hierarchy (this machine
// kind also mounts a v2 tree beside them at /sys/fs/cgroup/unified, which has no controllers
// and is left alone). Groups are named <group>/<id>, <group> unique per runtime root dir.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KrError, withContext } from '../../util/errors.ts';
import type { Resources, Stats } from '../runtime.ts';

const BASE = '/sys/fs/cgroup';
const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids', 'freezer'];

export function cgroupLayout(): 'v2' | 'v1' {
  return existsSync(join(BASE, 'cgroup.controllers')) ? 'v2' : 'v1';
}

/** The directories a container's processes join (one per v1 controller, or one v2 group). */
export function cgroupDirs(group: string, id: string): string[] {
  if (cgroupLayout() === 'v2') return [join(BASE, group, id)];
  // cpu and cpuacct may be co-mounted (cpu,cpuacct); skip duplicates and missing ones
  const seen = new Set<string>();
  return V1_CONTROLLERS.map((c) => join(BASE, c)).filter((d) => existsSync(d) && !seen.has(d) && seen.add(d)).map((d) => join(d, group, id));
}

export async function createCgroups(group: string, id: string, r: Resources = {}): Promise<string[]> {
  const dirs = cgroupDirs(group, id);
  try {
    if (cgroupLayout() === 'v2') {
      const parent = join(BASE, group);
      await mkdir(parent, { recursive: true });
      await writeFile(join(BASE, 'cgroup.subtree_control'), '+memory +cpu +pids').catch(() => undefined);
      await writeFile(join(parent, 'cgroup.subtree_control'), '+memory +cpu +pids').catch(() => undefined);
    }
    for (const d of dirs) await mkdir(d, { recursive: true });
    await applyLimits(dirs, r);
    return dirs;
  } catch (err) {
    throw withContext(err, `cgroups for ${id}`);
  }
}

/**
 * Takes over the groups a pooled shim's child waits in (./shim-pool.ts) for container `id`:
 * renamed to <group>/<id> where the kernel can (cgroup v1; a v2 group keeps its pool name), and
 * limited. Returns where they are now.
 */
export async function adoptCgroups(dirs: string[], id: string, r: Resources = {}): Promise<string[]> {
  try {
    const now = cgroupLayout() === 'v2' ? dirs : await Promise.all(dirs.map(async (d) => {
      const to = join(dirname(d), id);
      await rename(d, to);
      return to;
    }));
    await applyLimits(now, r);
    return now;
  } catch (err) {
    throw withContext(err, `cgroups for ${id}`);
  }
}

/** A negative limit lifts it (docker update --pids-limit -1). */
const pidsMax = (n: number): string => (n > 0 ? String(n) : 'max');

/** Limits on the container's groups: at create, and by docker update while it runs or is stopped. */
export async function applyLimits(dirs: string[], r: Resources): Promise<void> {
  if (cgroupLayout() === 'v2') {
    const d = dirs[0];
    if (r.memoryBytes) await writeFile(join(d, 'memory.max'), String(r.memoryBytes));
    if (r.nanoCpus) await writeFile(join(d, 'cpu.max'), `${Math.round(r.nanoCpus / 1e4)} 100000`);
    if (r.cpuShares) await writeFile(join(d, 'cpu.weight'), String(Math.max(1, Math.min(10000, Math.round(1 + ((r.cpuShares - 2) * 9999) / 262142)))));
    if (r.pidsLimit) await writeFile(join(d, 'pids.max'), pidsMax(r.pidsLimit));
    return;
  }
  for (const d of dirs) {
    const controller = d.slice(BASE.length + 1).split('/')[0];
    if (controller === 'memory' && r.memoryBytes) {
      // docker's default: swap limit = memory limit × 2 … here simply no extra swap where the knob
      // exists. memsw may never be below memory: raising (docker update) needs memsw first,
      // lowering needs it last, so it is written on both sides.
      const memsw = () => writeFile(join(d, 'memory.memsw.limit_in_bytes'), String(r.memoryBytes)).catch(() => undefined);
      await memsw();
      await writeFile(join(d, 'memory.limit_in_bytes'), String(r.memoryBytes));
      await memsw();
    }
    if (controller.startsWith('cpu') && controller !== 'cpuacct') {
      if (r.nanoCpus) {
        await writeFile(join(d, 'cpu.cfs_period_us'), '100000');
        await writeFile(join(d, 'cpu.cfs_quota_us'), String(Math.round(r.nanoCpus / 1e4)));
      }
      if (r.cpuShares) await writeFile(join(d, 'cpu.shares'), String(r.cpuShares));
    }
    if (controller === 'pids' && r.pidsLimit) await writeFile(join(d, 'pids.max'), pidsMax(r.pidsLimit));
  }
}

const num = async (path: string): Promise<number | null> => {
  const t = await readFile(path, 'utf8').catch(() => null);
  return t === null || t.trim() === 'max' ? null : Number(t.trim().split(/\s/)[0]);
};

/** A "name value" per line file (memory.stat) as numbers. */
async function counters(path: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await readFile(path, 'utf8').catch(() => '')).split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** Host pids of every process in the container's cgroup (its main process and its execs). */
export async function cgroupPids(dirs: string[]): Promise<number[]> {
  for (const d of dirs) {
    const text = await readFile(join(d, 'cgroup.procs'), 'utf8').catch(() => null);
    if (text !== null) return text.split('\n').filter(Boolean).map(Number);
  }
  return [];
}

export async function readStats(dirs: string[]): Promise<Stats> {
  const out: Stats = { memory: { usage: 0, limit: null }, cpuNanos: 0, pids: 0, read: new Date() };
  for (const d of dirs) {
    if (cgroupLayout() === 'v2') {
      out.memory.usage = (await num(join(d, 'memory.current'))) ?? 0;
      out.memory.limit = await num(join(d, 'memory.max'));
      const cpu = await readFile(join(d, 'cpu.stat'), 'utf8').catch(() => '');
      out.cpuNanos = Number(/usage_usec (\d+)/.exec(cpu)?.[1] ?? 0) * 1000;
      out.pids = (await num(join(d, 'pids.current'))) ?? 0;
      out.memory.stats = await counters(join(d, 'memory.stat'));
      continue;
    }
    const controller = d.slice(BASE.length + 1).split('/')[0];
    if (controller === 'memory') {
      out.memory.usage = (await num(join(d, 'memory.usage_in_bytes'))) ?? 0;
      const limit = await num(join(d, 'memory.limit_in_bytes'));
      // v1 reports "no limit" as a huge page-aligned number
      out.memory.limit = limit !== null && limit < 2 ** 62 ? limit : null;
      out.memory.stats = await counters(join(d, 'memory.stat'));
    }
    if (controller.includes('cpuacct')) out.cpuNanos = (await num(join(d, 'cpuacct.usage'))) ?? 0;
    if (controller === 'pids') out.pids = (await num(join(d, 'pids.current'))) ?? 0;
  }
  return out;
}

/**
 * Freezes or thaws the container's processes: cgroup.freeze (v2) or the v1 freezer controller
 * (a container created without a freezer group cannot be paused). Resolves once the kernel says
 * the group is FROZEN/THAWED, as docker pause does.
 */
export async function freeze(dirs: string[], on: boolean): Promise<void> {
  const v2 = cgroupLayout() === 'v2';
  const dir = v2 ? dirs[0] : dirs.find((d) => d.slice(BASE.length + 1).split('/')[0] === 'freezer');
  if (!dir) throw new KrError('unavailable', 'this container has no freezer cgroup (the host has no freezer controller)');
  const file = join(dir, v2 ? 'cgroup.freeze' : 'freezer.state');
  const want = v2 ? (on ? '1' : '0') : on ? 'FROZEN' : 'THAWED';
  await writeFile(file, want).catch((err) => {
    throw withContext(err, `${on ? 'pausing' : 'unpausing'} ${dir}`);
  });
  for (let i = 0; i < 500; i++) {
    const now = v2 ? /^frozen (\d)/m.exec(await readFile(join(dir, 'cgroup.events'), 'utf8').catch(() => ''))?.[1] : (await readFile(file, 'utf8').catch(() => '')).trim();
    if (now === want) return;
    // v1: FREEZING means a task has not stopped yet; asking again retries it
    if (!v2 && on) await writeFile(file, want).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new KrError('unavailable', `the cgroup ${dir} did not become ${want}`);
}

/** Removes the groups; processes still in them are killed first (a group with tasks can't go). */
export async function removeCgroups(dirs: string[]): Promise<void> {
  // one controller after another cost a round trip to the thread pool each, on the path of
  // `docker run --rm`; they are independent
  await Promise.all(dirs.map(removeCgroup));
}

async function removeCgroup(d: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const err = await rmdir(d).then(() => null, (e: NodeJS.ErrnoException) => e);
    if (!err || err.code === 'ENOENT') break;
    if (err.code !== 'EBUSY') throw withContext(err, `removing cgroup ${d}`);
    const procs = (await readFile(join(d, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
    for (const p of procs) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  // the runtime's parent group goes with its last container (busy or not empty: kept)
  await rmdir(dirname(d)).catch(() => undefined);
}
