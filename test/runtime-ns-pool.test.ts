// The namespace runtime's pooled supervisors (src/runtime/ns/shim-pool.ts): a create takes a
// krd-shim started before it, whose child already sits in fresh cgroups; the groups become the
// container's, with its limits; closing the runtime leaves no shim, child or group behind.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cgroupLayout } from '../src/runtime/ns/cgroups.ts';
import { NsRuntime } from '../src/runtime/ns/ns-runtime.ts';
import type { Stdio } from '../src/runtime/runtime.ts';
import { buildTestImage } from './kit/build-image.ts';

const work = await mkdtemp(join(tmpdir(), 'kraud-pool-'));
after(() => rm(work, { recursive: true, force: true }));

/** Pooled shims (krd-shim --pool) of one runtime's group, with the child each holds. */
function pooled(group: string): { shim: number; child?: number }[] {
  const shims: number[] = [];
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    const cmd = (() => {
      try {
        return readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0');
      } catch {
        return [];
      }
    })();
    if (cmd[1] === '--pool' && cmd.some((a) => a.includes(`/${group}/pool-`))) shims.push(Number(name));
    const ppid = /^PPid:\s+(\d+)/m.exec((() => {
      try {
        return readFileSync(`/proc/${name}/status`, 'utf8');
      } catch {
        return '';
      }
    })())?.[1];
    if (ppid) parents.set(Number(name), Number(ppid));
  }
  // the child is forked, not exec'd: it shows the same command line as its shim
  const own = shims.filter((pid) => !shims.includes(parents.get(pid) ?? 0));
  return own.map((shim) => ({ shim, child: [...parents].find(([, p]) => p === shim)?.[0] }));
}

function poolGroups(group: string): string[] {
  const bases = cgroupLayout() === 'v2' ? ['/sys/fs/cgroup'] : ['memory', 'cpu', 'pids', 'freezer'].map((c) => join('/sys/fs/cgroup', c));
  return bases.flatMap((b) => (existsSync(join(b, group)) ? readdirSync(join(b, group)).filter((n) => n.startsWith('pool-')).map((n) => join(b, group, n)) : []));
}

async function eventually<T>(what: string, check: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(check())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function output(io: Stdio): Promise<string> {
  let out = '';
  for await (const d of io.stdout) out += String(d);
  return out;
}

test('a create takes a pooled shim: its waiting child becomes the container, in groups named after it with its limits; close ends the pool', async () => {
  const { image } = await buildTestImage(join(work, 'image'));
  const rt = new NsRuntime(join(work, 'state'));
  const group = rt.cgroupGroup;
  try {
    // the first create has no pool yet: it starts the shim itself and fills the pool behind it
    const first = await rt.create({ id: 'plain', rootfs: { image }, args: ['true'] });
    await first.delete({ force: true });
    const waiting = await eventually('two pooled shims with their children', () => {
      const p = pooled(group);
      return p.length === 2 && p.every((w) => w.child !== undefined) && p;
    });
    assert.equal(poolGroups(group).length, (cgroupLayout() === 'v2' ? 1 : 4) * 2, 'each waiting child has groups of its own');

    const c = await rt.create({ id: 'pooled', rootfs: { image }, args: ['sh', '-c', 'echo pid $$; cat /proc/self/cgroup'], resources: { memoryBytes: 64 * 2 ** 20 } });
    const st = await c.state();
    assert.ok(waiting.some((w) => w.child === st.pid), `the container's process ${st.pid} is one that waited: ${JSON.stringify(waiting)}`);
    const memory = readFileSync(`/proc/${st.pid}/cgroup`, 'utf8').split('\n').find((l) => (cgroupLayout() === 'v2' ? l.startsWith('0::') : /:memory:/.test(l)));
    assert.ok(memory, 'a memory cgroup line');
    const path = memory.slice(memory.lastIndexOf(':') + 1);
    if (cgroupLayout() === 'v1') {
      assert.equal(path, `/${group}/pooled`, 'v1 groups are renamed after the container');
      assert.equal(readFileSync(join('/sys/fs/cgroup/memory', path, 'memory.limit_in_bytes'), 'utf8').trim(), String(64 * 2 ** 20));
    } else assert.equal(readFileSync(join('/sys/fs/cgroup', path, 'memory.max'), 'utf8').trim(), String(64 * 2 ** 20));
    const io = await c.attach();
    await c.start();
    const [out, exit] = await Promise.all([output(io), c.wait()]);
    assert.equal(exit.exitCode, 0);
    assert.match(out, /^pid 1\n/, 'PID 1 of its own pid namespace');
    assert.ok(out.includes(cgroupLayout() === 'v1' ? `/${group}/pooled` : '/pool-'), out);
    await c.delete();

    // the pool filled again; close ends every waiting shim and child and removes their groups
    await eventually('the pool filled again', () => pooled(group).length === 2);
    await rt.close();
    await eventually('no pooled shim left', () => pooled(group).length === 0);
    await eventually('no pool group left', () => poolGroups(group).length === 0);
  } finally {
    await rt.close();
  }
});
