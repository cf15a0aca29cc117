// The network namespaces test krds run in (kit/krd.ts). A fresh kraud-t-* one per krd by default;
// a krd restarted on the same data root after a kill -9 takes over its predecessor's, where its
// containers, bridges and rules still are. Whoever holds a namespace last removes it on release
// (a namespace the test made itself is only left, see kit/netns.ts), and so does the test
// process's exit for any a failing test left held.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestNetns, type TestNetns } from './netns.ts';

export interface HeldNetns {
  name: string;
  /** Makes these ports of the host's 127.0.0.1 answer inside the namespace (kit/loopback-forward.ts). */
  forward(ports: number[]): Promise<void>;
  /** Removes the namespace (or, for the test's own, the forwarders) unless another krd took it over. */
  release(): void;
}

interface Held {
  name: string;
  /** Set when the kit made the namespace (and so removes it). */
  ns?: TestNetns;
  holder: object;
  ports: Set<number>;
  forwarders: ChildProcess[];
  dir?: string;
}

const byName = new Map<string, Held>();
const byDataRoot = new Map<string, string>();
process.on('exit', () => [...byName.values()].forEach(drop));

export function holdNetns(which: string | { dataRoot: string }): HeldNetns {
  const known = byName.get(typeof which === 'string' ? which : (byDataRoot.get(which.dataRoot) ?? ''));
  let held: Held;
  if (known) held = known;
  else if (typeof which === 'string') held = { name: which, holder: {}, ports: new Set(), forwarders: [] };
  else {
    const ns = createTestNetns();
    held = { name: ns.name, ns, holder: {}, ports: new Set(), forwarders: [] };
    byDataRoot.set(which.dataRoot, ns.name);
  }
  byName.set(held.name, held);
  const me = {};
  held.holder = me;
  return {
    name: held.name,
    forward: (ports) => forward(held, ports),
    release: () => held.holder === me && drop(held),
  };
}

function drop(held: Held): void {
  for (const f of held.forwarders) f.kill('SIGKILL');
  if (held.dir) rmSync(held.dir, { recursive: true, force: true });
  held.ns?.remove();
  byName.delete(held.name);
  for (const [root, name] of byDataRoot) if (name === held.name) byDataRoot.delete(root);
}

async function forward(held: Held, ports: number[]): Promise<void> {
  const fresh = [...new Set(ports)].filter((p) => !held.ports.has(p));
  if (fresh.length === 0) return;
  fresh.forEach((p) => held.ports.add(p));
  const dir = (held.dir ??= mkdtempSync(join(tmpdir(), 'kraud-fwd-')));
  const script = [process.execPath, '--no-warnings', join(import.meta.dirname, 'loopback-forward.ts')];
  const args = [dir, ...fresh.map(String)];
  await Promise.all([
    started(held, script[0], [...script.slice(1), 'host', ...args]),
    started(held, 'nsenter', [`--net=/run/netns/${held.name}`, ...script, 'ns', ...args]),
  ]);
}

/** Spawns a forwarder and waits for its "ready"; it never keeps the test process alive. */
function started(held: Held, cmd: string, args: string[]): Promise<void> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  held.forwarders.push(child);
  child.unref();
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (!(out += d.toString()).includes('ready')) return;
      for (const s of [child.stdin, child.stdout, child.stderr]) (s as Socket).unref();
      resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', () => reject(new Error(`loopback forwarder ${args.join(' ')} exited: ${out.trim()}`)));
  });
}
