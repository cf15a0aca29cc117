// `cradle run`: boots a VM directory in the foreground. Container output arrives as frames on the
// kraud.io port (format: src/vm/README.md) and goes to the caller's streams; the pod's exit code
// is the first container's. Everything the guest sends is treated as hostile: frame sizes are
// capped, unknown frames end the session, and the VM is killed if it does not stop.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { KrError } from '../util/errors.ts';
import { guestAssets } from './assets.ts';
import { readPodDir } from './pod-dir.ts';
import { watchForStall } from './boot-watch.ts';
import { chooseAccel, qemuArgs, type Accel } from './qemu.ts';
import { startShares } from './virtiofs.ts';

const MAX_FRAME = 1 << 20;
const F = { stdout: 1, stderr: 2, exit: 3, timing: 4, error: 5, done: 6, stop: 7 } as const;

export interface RunOptions {
  stdout: Writable;
  stderr: Writable;
  /** Aborting asks the pod to stop (SIGTERM to its containers); a second abort kills the VM. */
  signal?: AbortSignal;
  accel?: Accel;
  /** Called once per phase with ms since this process started. */
  onPhase?: (phase: string, ms: number) => void;
  /** Told when a boot stalled and the VM is booted again (see boot-watch.ts). */
  onRetry?: (message: string) => void;
  /** Print the guest console (kernel + init) to stderr instead of DIR/console.log. */
  debug?: boolean;
}

export interface RunResult {
  exitCode: number;
  accel: Accel;
  /** Messages init reported (failures to start a container, …). */
  errors: string[];
}

const GUEST_PHASES: Record<string, string> = { init: 'init started', disks: 'disks ready', exec: "container exec'd" };

/** Boots of one run when the guest stalls before init (each stall costs its idle window, 30 s). */
const BOOT_ATTEMPTS = 3;

/** A boot that stalled before init (boot-watch.ts): nothing ran yet, so booting again is safe. */
class BootStalled extends KrError {}

export async function runPod(dir: string, opts: RunOptions): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await bootAndRun(dir, opts);
    } catch (err) {
      if (!(err instanceof BootStalled) || attempt >= BOOT_ATTEMPTS || opts.signal?.aborted) throw err;
      opts.onRetry?.(`${err.message}: booting it again (attempt ${attempt + 1} of ${BOOT_ATTEMPTS})`);
    }
  }
}

async function bootAndRun(dir: string, opts: RunOptions): Promise<RunResult> {
  dir = resolve(dir);
  const pod = await readPodDir(dir);
  const assets = guestAssets();
  const accel = opts.accel ?? chooseAccel();
  const phase = opts.onPhase ?? (() => {});
  const sockDir = await mkdtemp(join(tmpdir(), 'kraud-cradle-run-'));
  const ioPath = join(sockDir, 'io.sock');
  const errors: string[] = [];
  let exitCode: number | null = null;
  let firstExit: number | null = null;
  let offsetMs: number | null = null; // host ms (since process start) at guest boottime 0
  let sawOutput = false;
  let io = null as Socket | null;

  const server = createServer((sock) => {
    if (io) return sock.destroy();
    io = sock;
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 6) {
        const type = buf[0];
        const idx = buf[1];
        const len = buf.readUInt32BE(2);
        if (len > MAX_FRAME) return hostile(`a frame of ${len} bytes`);
        if (buf.length < 6 + len) break;
        const payload = buf.subarray(6, 6 + len);
        buf = buf.subarray(6 + len);
        if (type === F.stdout || type === F.stderr) {
          if (!sawOutput) (sawOutput = true), phase('first output', performance.now());
          (type === F.stdout ? opts.stdout : opts.stderr).write(Buffer.from(payload));
        } else if (type === F.timing) {
          const [name, at, sent] = payload.toString('latin1').split(' ');
          booted = true;
          stopWatch();
          if (offsetMs === null && Number(sent) > 0) {
            offsetMs = performance.now() - Number(sent) / 1e6;
            phase('kernel entered', Math.max(0, offsetMs));
          }
          if (GUEST_PHASES[name] && offsetMs !== null) phase(GUEST_PHASES[name], offsetMs + Number(at) / 1e6);
        } else if (type === F.exit) {
          const code = Number.parseInt(payload.toString('latin1'), 10);
          if (idx === 0 && firstExit === null && Number.isInteger(code)) firstExit = code;
        } else if (type === F.error) errors.push(payload.toString('utf8').slice(0, 500));
        else if (type === F.done) {
          const code = Number.parseInt(payload.toString('latin1'), 10);
          exitCode = Number.isInteger(code) && code >= 0 && code < 256 ? code : 125;
        } else return hostile(`frame type ${type}`);
      }
    });
    sock.on('error', () => {});
  });
  const hostile = (what: string) => {
    errors.push(`the guest sent ${what}: stopping it`);
    io?.destroy();
    qemu.kill('SIGKILL');
  };
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(ioPath, ok));

  // one virtiofsd per shared directory (./virtiofs.ts); they exit with qemu
  const daemons = await startShares(sockDir, pod.shares ?? [], { detached: false }).catch(async (err) => {
    server.close();
    await rm(sockDir, { recursive: true, force: true });
    throw err;
  });
  const args = qemuArgs({
    accel,
    kernel: assets.kernel,
    initrd: assets.initramfs,
    memoryMiB: pod.spec.resources.memoryMiB,
    cpus: pod.spec.resources.cpus,
    disks: pod.disks,
    consoleFile: opts.debug ? null : join(dir, 'console.log'),
    ioSocket: ioPath,
    network: pod.network.mode === 'user' && pod.spec.network.mode === 'static' ? { mode: 'user', mac: pod.spec.network.mac, forwards: pod.network.forwards } : { mode: 'none' },
    quiet: !opts.debug,
    shares: daemons.map(({ tag, socket }) => ({ tag, socket: join(sockDir, socket) })),
  });
  // setpriv (util-linux) execs qemu with a parent-death signal: if cradle run itself is killed, the VM
  // goes with it instead of running on unseen (Node cannot set PR_SET_PDEATHSIG on a child itself)
  const qemu = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...args], { stdio: ['ignore', opts.debug ? 'inherit' : 'ignore', 'pipe'] });
  let qemuErr = '';
  qemu.stderr!.setEncoding('utf8').on('data', (d: string) => {
    qemuErr = (qemuErr + d).slice(-4000);
    if (opts.debug) opts.stderr.write(d);
  });
  const exited = new Promise<number | null>((ok) => {
    qemu.on('exit', (code) => ok(code));
    qemu.on('error', (err) => {
      qemuErr += err.message;
      ok(null);
    });
  });
  // A boot that stalls (src/vm/README.md): qemu idle before init, ended at once and booted again.
  let stalled: string | null = null;
  let stopWatch = () => {};
  qemu.on('spawn', () => {
    phase('qemu spawned', performance.now());
    stopWatch = watchForStall(qemu.pid!, (idleMs) => {
      if (booted) return;
      stalled = `the guest stalled in its boot (qemu idle for ${Math.round(idleMs / 1000)} s before init; accel ${accel})`;
      qemu.kill('SIGKILL');
    });
  });

  // A guest that never reaches init (a hung boot; KVM that only pretends to work) must not hang run.
  let booted = false;
  // generous: a TCG boot on a 2-core machine running other VMs and tests took 80 s (6 at once, load 20)
  const bootLimit = accel === 'kvm' ? 60_000 : 600_000;
  const bootTimer = setTimeout(() => {
    if (booted) return;
    errors.unshift(`the guest did not boot within ${bootLimit / 1000} s (accel ${accel}; KRAUD_ACCEL=tcg forces emulation)`);
    qemu.kill('SIGKILL');
  }, bootLimit);
  bootTimer.unref();
  let aborts = 0;
  const onAbort = () => {
    aborts++;
    if (aborts === 1 && io) io.write(Buffer.from([F.stop, 0, 0, 0, 0, 1, 15]));
    else qemu.kill('SIGKILL');
    // a guest that ignores the stop request still ends: containers get 2 s in the guest, the VM 10 s
    setTimeout(() => qemu.kill('SIGKILL'), 10_000).unref();
  };
  opts.signal?.addEventListener('abort', onAbort);
  if (opts.signal?.aborted) onAbort();
  try {
    const code = await exited;
    if (stalled !== null && exitCode === null) throw new BootStalled('unavailable', `cradle run: ${stalled}`);
    phase('total', performance.now());
    if (exitCode === null && firstExit !== null) exitCode = firstExit;
    if (exitCode === null) {
      const why = errors[0] ?? (qemuErr.trim().split('\n').pop() || `qemu exited with ${code} before the pod finished (see ${join(dir, 'console.log')})`);
      throw new KrError('unavailable', `cradle run: ${why}`);
    }
    return { exitCode, accel, errors };
  } finally {
    stopWatch();
    clearTimeout(bootTimer);
    opts.signal?.removeEventListener('abort', onAbort);
    io?.destroy();
    server.close();
    for (const { daemon } of daemons) daemon.kill('SIGKILL');
    await rm(sockDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
