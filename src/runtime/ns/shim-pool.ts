// Supervisors started before their containers: each pooled krd-shim has forked its child (PID 1
// of a new pid namespace) and moved it into fresh cgroups, then waits for a container to claim it
// (native/krd-shim-pool.h). Moving a process into a cgroup waits for an RCU grace period (about
// 10 ms per cgroup-v1 controller on this machine kind, measured), which `crun run` pays on every
// start; a create that claims a pooled shim skips it, and the fork and exec of the shim.
// Slots are <group>/pool-<random> until claimed; pools of earlier krds are swept at the first fill.
import { randomBytes } from 'node:crypto';
import { readdir, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { cgroupDirs, createCgroups, removeCgroups } from './cgroups.ts';
import { dropPooledShim, poolShim } from './spawn-shim.ts';

export interface PoolSlot {
  /** The pooled shim's request id at the spawner, for the claim. */
  slot: string;
  /** Where its child waits. */
  cgroups: string[];
}

/** KRAUD_SHIM_POOL: how many shims wait (0: none); 2 keeps back-to-back runs fed. */
const size = () => Math.max(0, Math.min(32, Number(process.env.KRAUD_SHIM_POOL ?? 2) || 0));

export class ShimPool {
  private readonly group: string;
  private readonly ready: PoolSlot[] = [];
  private filling = 0;
  private swept: Promise<void> | undefined;
  private closed = false;

  constructor(group: string) {
    this.group = group;
  }

  /** A ready slot, if one is; the pool fills again behind it either way. */
  take(): PoolSlot | undefined {
    const slot = this.ready.shift();
    this.fill();
    return slot;
  }

  private fill(): void {
    while (!this.closed && this.ready.length + this.filling < size()) {
      this.filling++;
      void this.prepare()
        .then((s) => {
          if (!s) return;
          if (this.closed) return void this.end(s);
          this.ready.push(s);
        })
        .finally(() => this.filling--);
    }
  }

  private async prepare(): Promise<PoolSlot | undefined> {
    await (this.swept ??= this.sweep());
    const cgroups = await createCgroups(this.group, `pool-${randomBytes(6).toString('hex')}`).catch(() => undefined);
    if (!cgroups) return undefined;
    try {
      return { slot: await poolShim(cgroups), cgroups };
    } catch {
      // a pool that cannot start shims is no pool: creates go the plain way
      this.closed = true;
      await removeCgroups(cgroups).catch(() => undefined);
      return undefined;
    }
  }

  /** Empty slot groups a krd before this one left behind (its pooled shims ended with it). */
  private async sweep(): Promise<void> {
    for (const parent of cgroupDirs(this.group, 'x').map(dirname)) {
      for (const name of await readdir(parent).catch(() => [])) {
        if (name.startsWith('pool-')) await rmdir(join(parent, name)).catch(() => undefined);
      }
    }
  }

  /**
   * Ends the waiting shims (krd stops) and removes their groups. Shims
   * of a krd killed outright end when its spawner does; their groups are swept by the next one.
   */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.ready.splice(0).map((s) => this.end(s)));
  }

  private async end(s: PoolSlot): Promise<void> {
    dropPooledShim(s.slot);
    await removeCgroups(s.cgroups).catch(() => undefined);
  }
}
