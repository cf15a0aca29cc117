// Telling a hung guest boot from a slow one. Under TCG on a loaded machine a healthy boot takes
// from 5 s to minutes of wall clock, so a wall-clock deadline short enough to help would also end
// slow boots. What tells them apart is the VM's own activity: a booting guest keeps its vCPU
// thread busy (TCG emulates every instruction; KVM runs it), so qemu's threads are on a CPU or
// waiting for one nearly all the time, however loaded the host is. A guest hung in its boot sits
// halted with no interrupt to come, and qemu sleeps (src/vm/README.md, "a rare TCG boot that
// stalls"). The kernel counts both times per thread in /proc/PID/task/*/schedstat.
import { readdirSync, readFileSync } from 'node:fs';

/** ns qemu's threads spent on a CPU or runnable in its queue; null once the process is gone. */
export function activeNanos(pid: number): number | null {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let sum = 0;
  for (const t of tasks) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
      if (Number.isFinite(run) && Number.isFinite(wait)) sum += run + wait;
    } catch {
      // a thread that ended between the two reads
    }
  }
  return sum;
}

export interface StallWatchOptions {
  /** How long the VM must have been idle to count as stalled. */
  idleMs?: number;
  /** Below this share of idleMs of activity, the window counts as idle (a booting guest is near 1). */
  busyShare?: number;
  /** How often qemu's threads are sampled. */
  everyMs?: number;
}

/**
 * Calls onStall once when qemu (pid) has been idle for idleMs: its threads together spent less than
 * busyShare of that time running or runnable. Stop it once the guest has shown progress (a healthy
 * guest idles later, e.g. while its container sleeps).
 */
export function watchForStall(pid: number, onStall: (idleMs: number) => void, o: StallWatchOptions = {}): () => void {
  const idleMs = o.idleMs ?? 30_000;
  const busyShare = o.busyShare ?? 0.1;
  const everyMs = o.everyMs ?? 2_000;
  const samples: { at: number; active: number }[] = [];
  const timer = setInterval(() => {
    const active = activeNanos(pid);
    if (active === null) return stop();
    const at = performance.now();
    samples.push({ at, active });
    // the oldest sample still at least idleMs back is the start of the window
    while (samples.length > 1 && at - samples[1].at >= idleMs) samples.shift();
    const first = samples[0];
    if (at - first.at < idleMs) return;
    if ((active - first.active) / 1e6 < busyShare * (at - first.at)) {
      stop();
      onStall(Math.round(at - first.at));
    }
  }, everyMs);
  timer.unref();
  function stop() {
    clearInterval(timer);
  }
  return stop;
}
