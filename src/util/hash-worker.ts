// SHA-256 and file writes off the main thread: one worker_thread, shared by every blob being
// stored, hashes the chunks it is handed and writes them (in order, with writev) to a file
// descriptor the caller opened. The main thread is left with the socket reads and HTTP parsing,
// so a download uses both cores instead of queueing hash and write behind the next read.
// Chunks are transferred, not copied, when they own their whole ArrayBuffer (node:http body
// chunks do); the caller must not touch a chunk after handing it over.
//
// The caller owns the descriptor: it must `end()` a job (which waits until the worker has
// finished every write of it) before it closes or reuses the fd.
import type { Worker } from 'node:worker_threads';

// Plain CommonJS, evaluated in the worker: no module resolution and no type stripping on the
// way to the first hashed byte.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { writevSync } = require('node:fs');
const jobs = new Map();
function writeAll(fd, chunks) {
  let rest = chunks;
  while (rest.length) {
    const batch = rest.length > 1024 ? rest.slice(0, 1024) : rest;
    let want = 0;
    for (const c of batch) want += c.length;
    const n = writevSync(fd, batch);
    if (n === want && batch === rest) return;
    let skip = n;
    const next = [];
    for (const c of rest) {
      if (skip >= c.length) skip -= c.length;
      else { next.push(skip ? c.subarray(skip) : c); skip = 0; }
    }
    rest = next;
  }
}
parentPort.on('message', (m) => {
  if (m.op === 'open') { jobs.set(m.id, { fd: m.fd, hash: createHash('sha256'), failed: false }); return; }
  const job = jobs.get(m.id);
  if (!job) return;
  if (m.op === 'data') {
    if (!job.failed) {
      try {
        for (const c of m.chunks) job.hash.update(c);
        writeAll(job.fd, m.chunks);
      } catch (e) {
        job.failed = true;
        parentPort.postMessage({ id: m.id, op: 'error', error: { message: String(e && e.message), code: e && e.code, errno: e && e.errno, syscall: e && e.syscall } });
      }
    }
    parentPort.postMessage({ id: m.id, op: 'ack', bytes: m.bytes });
  } else if (m.op === 'end') {
    jobs.delete(m.id);
    parentPort.postMessage({ id: m.id, op: 'done', digest: job.failed || m.discard ? undefined : job.hash.digest('hex') });
  }
});
`;

type Reply =
  | { id: number; op: 'ack'; bytes: number }
  | { id: number; op: 'error'; error: { message: string; code?: string; errno?: number; syscall?: string } }
  | { id: number; op: 'done'; digest?: string };

interface JobState {
  onAck(bytes: number): void;
  onError(err: Error): void;
  onDone(digest: string | undefined): void;
}

let worker: Worker | undefined;
let nextId = 1;
const jobs = new Map<number, JobState>();

function getWorker(): Worker {
  if (worker) return worker;
  const { Worker } = process.getBuiltinModule('node:worker_threads');
  const w = new Worker(WORKER_SOURCE, { eval: true, stdout: false, stderr: false });
  w.on('message', (m: Reply) => {
    const job = jobs.get(m.id);
    if (!job) return;
    if (m.op === 'ack') job.onAck(m.bytes);
    else if (m.op === 'error') job.onError(Object.assign(new Error(m.error.message), { code: m.error.code, errno: m.error.errno, syscall: m.error.syscall }));
    else {
      jobs.delete(m.id);
      if (jobs.size === 0) w.unref();
      job.onDone(m.digest);
    }
  });
  const died = (err: Error) => {
    if (worker === w) worker = undefined;
    const pending = [...jobs.values()];
    jobs.clear();
    // A dead worker writes nothing more, so every fd it had is the caller's again.
    for (const job of pending) {
      job.onError(err);
      job.onDone(undefined);
    }
  };
  w.on('error', died);
  w.on('exit', (code) => died(new Error(`hash worker exited (code ${code})`)));
  // Idle, it never keeps the process alive; a job refs it (see HashWriter). After the 'message'
  // listener: adding that one refs the worker's port again.
  w.unref();
  worker = w;
  return w;
}

/** Starts the worker now (it takes ~30 ms to come up) so it is ready when the first bytes are. */
export function warmHashWorker(): void {
  getWorker();
}

/** Hashes (sha256) and writes, in order, the chunks handed to `write`, to `fd`, on the worker. */
export class HashWriter {
  /** Bytes handed over and not yet written. */
  pending = 0;
  /** The first write error, if any (later writes of the job are skipped). */
  error: Error | undefined;
  private readonly id = nextId++;
  private readonly worker: Worker;
  /** Each returns true once it is satisfied (and is then dropped). */
  private waiters: (() => boolean)[] = [];
  private done: Promise<string | undefined>;
  private ended = false;

  constructor(fd: number) {
    this.worker = getWorker();
    let resolveDone!: (d: string | undefined) => void;
    this.done = new Promise((r) => (resolveDone = r));
    jobs.set(this.id, {
      onAck: (bytes) => {
        this.pending -= bytes;
        this.wake();
      },
      onError: (err) => {
        this.error ??= err;
        this.wake();
      },
      onDone: (digest) => {
        this.pending = 0;
        this.wake();
        resolveDone(digest);
      },
    });
    if (jobs.size === 1) this.worker.ref();
    this.worker.postMessage({ op: 'open', id: this.id, fd });
  }

  /** Hands chunks over (transferring those that own their ArrayBuffer; copying the others). */
  write(chunks: Uint8Array[], bytes: number): void {
    const transfer: ArrayBuffer[] = [];
    const out: Uint8Array[] = [];
    for (const c of chunks) {
      const buf = c.buffer;
      if (buf instanceof ArrayBuffer && c.byteOffset === 0 && c.byteLength === buf.byteLength && !transfer.includes(buf)) {
        transfer.push(buf);
        out.push(c);
      } else out.push(new Uint8Array(c)); // a view into someone else's memory: copy
    }
    this.pending += bytes;
    this.worker.postMessage({ op: 'data', id: this.id, chunks: out, bytes }, transfer);
  }

  /** Resolves when fewer than `limit` bytes wait to be written, or on an error. */
  room(limit: number): Promise<void> {
    if (this.pending < limit || this.error) return Promise.resolve();
    return new Promise((resolve) =>
      this.waiters.push(() => {
        if (this.pending >= limit && !this.error) return false;
        resolve();
        return true;
      }),
    );
  }

  /**
   * Waits until the worker is done with the fd; returns the hex digest of everything written,
   * or throws the first write error. With `discard`, only waits (for failures and aborts) and
   * returns ''.
   */
  async end(discard = false): Promise<string> {
    if (!this.ended) {
      this.ended = true;
      this.worker.postMessage({ op: 'end', id: this.id, discard });
    }
    const digest = await this.done;
    if (discard) return '';
    if (this.error) throw this.error;
    if (digest === undefined) throw new Error('hash worker gave no digest');
    return digest;
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => !w());
  }
}
