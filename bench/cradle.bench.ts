// cradle run to the container's first output byte (host wall clock, from spawning `cradle run`,
// Node's start included) vs a bare qemu boot of the same kernel and the same qemu options with a
// trivial init (native/cradle-bare-init.c: loads the same modules, prints one line on the virtio
// console) to that line's first byte. Goal: ≤ 1.15× the bare boot. With KVM the goal is also
// ≤ 100 ms wall clock; without it the row says so. Per-phase medians (cradle run --timings) go
// to stderr. CRADLE_BENCH_RUNS sets the runs per side (default 5).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { buildImage, busyboxRoot } from '../test/kit/build-image.ts';
import { guestAssets } from '../src/vm/assets.ts';
import { chooseAccel, qemuArgs } from '../src/vm/qemu.ts';
import { median, sideBySide, type Row } from './lib.ts';

/** Spawns cmd and resolves with ms from spawn to the first stdout byte; waits for the exit. */
function toFirstByte(cmd: string, args: string[], env: NodeJS.ProcessEnv, errSink?: (s: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let first = -1;
    let err = '';
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    p.stdout.once('data', () => (first = Number(process.hrtime.bigint() - t0) / 1e6));
    p.stdout.resume();
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', () => {
      errSink?.(err);
      if (first < 0) reject(new Error(`${cmd}: no output (${err.trim().split('\n').pop()})`));
      else resolve(first);
    });
  });
}

export async function benchCradle(work: string, repo: string): Promise<Row[]> {
  const runs = Number(process.env.CRADLE_BENCH_RUNS || 5);
  const accel = chooseAccel();
  const entries = busyboxRoot(['echo'], { users: false });
  const built = await buildImage(path.join(work, 'cradle-img'), [{ entries }], { config: { Cmd: ['/bin/echo', 'first output'] } });
  const env = { ...process.env, KRAUD_CRADLE_CACHE: path.join(work, 'cradle-cache'), KRAUD_ACCEL: accel };
  const cradle = path.join(repo, 'node_modules/.bin/cradle');
  const dir = path.join(work, 'cradle-vm');
  await new Promise<void>((ok, fail) => spawn(cradle, ['summon', dir, built.dockerArchive], { env, stdio: 'inherit' }).on('exit', (c) => (c === 0 ? ok() : fail(new Error(`summon exited ${c}`)))));

  const assets = guestAssets();
  const bare = qemuArgs({ accel, kernel: assets.kernel, initrd: assets.bare, memoryMiB: 256, cpus: 1, disks: [], consoleFile: null, network: { mode: 'none' }, quiet: true });
  const ours: number[] = [];
  const base: number[] = [];
  const phases = new Map<string, number[]>();
  const collect = (err: string) => {
    for (const m of err.matchAll(/^(.+): (\d+) ms$/gm)) phases.set(m[1], [...(phases.get(m[1]) ?? []), Number(m[2])]);
  };
  await sideBySide(
    runs,
    async () => void ours.push(await toFirstByte(cradle, ['run', dir, '--timings'], env, collect)),
    async () => void base.push(await toFirstByte('qemu-system-x86_64', bare, env)),
  );
  const o = median(ours) / 1000;
  const b = median(base) / 1000;
  process.stderr.write(`bench cradle (${accel}): cradle run → first output ${(o * 1000).toFixed(0)} ms, bare boot → first line ${(b * 1000).toFixed(0)} ms\n`);
  for (const [p, xs] of phases) process.stderr.write(`  ${p}: ${median(xs).toFixed(0)} ms (median of ${xs.length})\n`);
  const rows: Row[] = [
    { name: `\`cradle run\` → container's first output byte (${accel})`, ours: o, baseline: b, baselineName: 'bare qemu boot, same kernel+modules, trivial init → its line', goal: '≤ 1.15× time' },
  ];
  if (accel === 'kvm') rows.push({ name: '`cradle run` → first output, KVM wall clock', ours: o, baseline: 0.1, baselineName: 'goal 100 ms', goal: '≤ 100 ms' });
  else process.stderr.write('bench cradle: no usable KVM on this machine: the ≤ 100 ms wall-clock goal cannot be measured here\n');
  return rows;
}
