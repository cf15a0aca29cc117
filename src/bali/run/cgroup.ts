// --mem: a memory limit in a new cgroup nested under the caller's own, so every limit the
// caller is under (a systemd unit, a nomad task) still applies on top. Handles what the host
// has: the v1 memory controller, or cgroup v2 with memory delegated to the caller's cgroup.
// The cgroup is named bali-<pid>; since bali execs into the service, nothing is left running
// to remove it afterwards, so each run removes empty bali-* siblings left by earlier runs.
import fs from 'node:fs';
import path from 'node:path';
import { KrError } from '../../util/errors.ts';

function callerCgroups(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) for (const c of m[1] ? m[1].split(',') : ['']) out.set(c, m[2]);
  }
  return out;
}

function sweepEmptySiblings(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (!/^bali-\d+$/.test(name)) continue;
    try {
      fs.rmdirSync(path.join(dir, name)); // fails (EBUSY) while processes are inside: kept
    } catch {
      /* still in use */
    }
  }
}

/** Moves this process into a new memory-limited cgroup; returns its path. */
export function limitMemory(bytes: number, pid = process.pid): string {
  const groups = callerCgroups();
  const v1 = groups.get('memory');
  if (v1 !== undefined && fs.existsSync('/sys/fs/cgroup/memory/cgroup.procs')) {
    const parent = path.join('/sys/fs/cgroup/memory', v1);
    sweepEmptySiblings(parent);
    const dir = path.join(parent, `bali-${pid}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(bytes));
    fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    return dir;
  }
  const unified = groups.get('');
  const base = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
  if (unified !== undefined) {
    const parent = path.join(base, unified);
    const controllers = fs.readFileSync(path.join(parent, 'cgroup.subtree_control'), 'utf8');
    if (!controllers.split(/\s+/).includes('memory')) {
      throw new KrError('unavailable', `--mem: the memory controller is not delegated to ${parent} (cgroup v2 needs it in cgroup.subtree_control)`);
    }
    sweepEmptySiblings(parent);
    const dir = path.join(parent, `bali-${pid}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'memory.max'), String(bytes));
    fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    return dir;
  }
  throw new KrError('unavailable', '--mem: no memory cgroup controller found on this host');
}
