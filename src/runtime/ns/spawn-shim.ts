// Starts a krd-shim detached (its own session; it outlives krd) and waits for its one-line
// answer: "ok <pid>" once the process is set up and waiting for start, or "error <why>".
//
// The fork+exec is done by krd-spawner (native/krd-spawner.c), one small child process per
// Node process: node's spawn() forks the whole daemon and blocks the event loop until the exec
// (~3 ms idle, 5–10 ms on a busy machine, per container), while the spawner forks in
// microseconds and answers on a pipe, so concurrent creates overlap.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KrError } from '../../util/errors.ts';

// Inside a pod VM (vdocker) both come from elsewhere: KRAUD_SHIM names the initramfs's static shim,
// KRAUD_SPAWNER the spawner's command line as a JSON list (run through the tools disk's loader).
export const SHIM_PATH = process.env.KRAUD_SHIM || fileURLToPath(new URL('../../../build/krd-shim', import.meta.url));
const SPAWNER_CMD: string[] = process.env.KRAUD_SPAWNER ? (JSON.parse(process.env.KRAUD_SPAWNER) as string[]) : [fileURLToPath(new URL('../../../build/krd-spawner', import.meta.url))];
const SPAWNER_PATH = SPAWNER_CMD[SPAWNER_CMD.length - 1];

const MAX_REQUEST = (1 << 20) - 4;

interface Waiter {
  resolve: (pid: number) => void;
  reject: (err: Error) => void;
}

class Spawner {
  private readonly proc: ChildProcess;
  private readonly waiting = new Map<string, Waiter>();
  private next = 0;
  private out = '';
  gone = false;

  constructor() {
    this.proc = spawn(SPAWNER_CMD[0], SPAWNER_CMD.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (d: string) => {
      this.out += d;
      for (let nl = this.out.indexOf('\n'); nl >= 0; nl = this.out.indexOf('\n')) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        const sp = line.indexOf(' ');
        this.answer(line.slice(0, sp), line.slice(sp + 1));
      }
    });
    const end = (why: string) => {
      this.gone = true;
      for (const w of this.waiting.values()) w.reject(new KrError('unavailable', `krd-spawner ${why}`));
      this.waiting.clear();
    };
    this.proc.on('error', (err) => end(`failed: ${err.message}`));
    this.proc.on('exit', (code, signal) => end(`exited (${signal ?? code})`));
    this.proc.stdin!.on('error', () => undefined);
    this.idle();
  }

  /** A shim with the container's command line; `slot`: claims that pooled shim for it. */
  start(args: string[], env: string[], slot?: string): Promise<number> {
    return this.request([...(slot ? ['claim', slot] : []), String(args.length + 1), SHIM_PATH, ...args, ...env]).answer;
  }

  /** A pooled shim whose child waits in `cgroups` (native/krd-shim-pool.h); resolves with its request id. */
  pool(cgroups: string[]): Promise<string> {
    const args = ['--pool', ...cgroups.flatMap((c) => ['--cgroup', c])];
    const { id, answer } = this.request(['pool', String(args.length + 1), SHIM_PATH, ...args]);
    return answer.then(() => id);
  }

  /** Ends a pooled shim that was never claimed (its child goes with it); the spawner answers nothing. */
  drop(slot: string): void {
    this.request(['drop', slot], false);
  }

  /** Sends a request; `answered`: the spawner answers it with a line, which `answer` resolves with. */
  private request(strings: string[], answered = true): { id: string; answer: Promise<number> } {
    const id = String(this.next++);
    const body = Buffer.from([id, ...strings].map((s) => `${s}\0`).join(''));
    // the spawner's request buffer (1 MiB); exec would refuse much more anyway (E2BIG)
    if (body.length > MAX_REQUEST) return { id, answer: Promise.reject(new KrError('invalid', `command and environment too large (${body.length} bytes)`)) };
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    const answer = answered
      ? new Promise<number>((resolve, reject) => {
          this.waiting.set(id, { resolve, reject });
          this.busy();
        })
      : Promise.resolve(0);
    this.proc.stdin!.write(Buffer.concat([head, body]));
    return { id, answer };
  }

  private answer(id: string, text: string): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (this.waiting.size === 0) this.idle();
    if (text.startsWith('ok ') || text.startsWith('ready ')) w.resolve(Number(text.slice(text.indexOf(' ') + 1)));
    else if (text.startsWith('exited ')) w.reject(new KrError('unavailable', `krd-shim exited before the container was ready: ${text.slice(7).trim()}`));
    else w.reject(new KrError(/not found|No such file/.test(text) ? 'not-found' : 'invalid', text.replace(/^error /, '')));
  }

  /** Nothing waiting: the spawner must not keep the process alive. */
  private idle(): void {
    this.proc.unref();
    (this.proc.stdout as { unref?: () => void }).unref?.();
    (this.proc.stdin as { unref?: () => void }).unref?.();
  }

  private busy(): void {
    this.proc.ref();
    (this.proc.stdout as { ref?: () => void }).ref?.();
    (this.proc.stdin as { ref?: () => void }).ref?.();
  }
}

let spawner: Spawner | null = null;

function checked(args: string[], env: string[]): Spawner {
  if (!existsSync(SHIM_PATH)) throw new KrError('unavailable', `${SHIM_PATH} is missing: run make native`);
  if (!existsSync(SPAWNER_PATH)) throw new KrError('unavailable', `${SPAWNER_PATH} is missing: run make native`);
  if ([...args, ...env].some((s) => s.includes('\0'))) throw new KrError('invalid', 'an argument or environment entry contains a NUL byte');
  if (!spawner || spawner.gone) spawner = new Spawner();
  return spawner;
}

/** Starts a shim; with `slot` (from poolShim), that waiting shim takes the container instead. */
export async function spawnShim(args: string[], env: string[], slot?: string): Promise<number> {
  return checked(args, env).start(args, env.filter((kv) => kv.indexOf('=') > 0), slot);
}

/** Ends a pooled shim nobody claimed. */
export function dropPooledShim(slot: string): void {
  if (spawner && !spawner.gone) spawner.drop(slot);
}

/** Starts a pooled shim whose child waits in `cgroups`; resolves once it is ready, with its slot. */
export async function poolShim(cgroups: string[]): Promise<string> {
  return checked(cgroups, []).pool(cgroups);
}
