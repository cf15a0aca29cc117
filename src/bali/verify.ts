// Verifying bali files in one streaming pass with constant memory: the decompressed bytes
// flow on to the caller (e.g. an extractor) while being hashed, except the last 80, which
// are held back as the trailer candidate. The stream ends only after the signature checked
// out; otherwise it fails, so a consumer that waits for the end never uses unverified bytes.
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';
import { KrError, withContext } from '../util/errors.ts';
import { openSource } from '../util/fetch.ts';
import { verifyDigest } from './ed25519ph.ts';
import { parseTrailer, SIGNATURE_CONTEXT, TRAILER_SIZE } from './format.ts';
import { paddingIsClean } from './gzip-sealed.ts';
import { identityString } from './keys.ts';
import { readSignerHint } from './signer-hint.ts';

export interface Verdict {
  /** Identity that signed the file, when known (a trusted key matched, or the file names its signer). */
  signer: string | null;
  /** True when the signature verifies against one of the trusted identities. */
  trusted: boolean;
  signed: boolean;
  tarDigest: string;
  tarBytes: number;
  fileBytes: number;
}

export interface VerifyOptions {
  trusted: Uint8Array[];
  /** Accept unsigned files and untrusted signers (the verdict says which); never accepts corrupt gzip. */
  insecure?: boolean;
}

// SHA-512 runs on a worker thread. On the main thread it took turns with everything else there
// (the extractor, in bali run), and it is the biggest single cost after gunzip (~0.5 s for
// 339 MB): apart, gunzip (libuv's pool), hashing (the worker) and extraction (main) overlap.
// Plain JS evaluated in the worker: nothing to load or type-strip, ~40 ms to start.
const HASH_WORKER = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha512');
parentPort.on('message', (m) => {
  if (m === 'digest') return parentPort.postMessage(hash.digest());
  hash.update(new Uint8Array(m.buffer, 0, m.length));
  parentPort.postMessage(m.buffer, [m.buffer]); // back for reuse: no new memory per batch
});`;
const HASH_BATCH = 1 << 20; // bytes per message to the worker
const HASH_AHEAD = 64 << 20; // most bytes sent but not yet hashed, before the input waits

/** sha512 of the bytes given to update(), computed on a worker thread, with flow control. */
class WorkerHash {
  private readonly worker = new Worker(HASH_WORKER, { eval: true, execArgv: [], env: {}, stdout: true, stderr: true });
  private current: ArrayBuffer | null = null;
  private filled = 0;
  private outstanding = 0;
  /** HASH_BATCH-sized buffers the worker is done with. */
  private spare: ArrayBuffer[] = [];
  private failure: Error | null = null;
  private waiter: (() => void) | null = null;
  private digestWaiter: ((d: Buffer) => void) | null = null;

  constructor() {
    this.worker.on('message', (m: ArrayBuffer | Uint8Array) => {
      if (m instanceof ArrayBuffer) {
        this.outstanding -= m.byteLength;
        if (m.byteLength === HASH_BATCH && this.spare.length < 8) this.spare.push(m);
        if (this.outstanding <= HASH_AHEAD / 2) this.wake();
      } else {
        this.digestWaiter?.(Buffer.from(m.buffer, m.byteOffset, m.byteLength));
      }
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', () => this.fail(new Error('the hashing thread exited')));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake();
    this.digestWaiter?.(Buffer.alloc(0));
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Copies into the current batch buffer, handing each full one over (transferred, not cloned). */
  update(bytes: Buffer): void {
    for (let from = 0; from < bytes.length; ) {
      this.current ??= this.spare.pop() ?? new ArrayBuffer(HASH_BATCH);
      const n = Math.min(bytes.length - from, HASH_BATCH - this.filled);
      new Uint8Array(this.current, this.filled, n).set(bytes.subarray(from, from + n));
      from += n;
      this.filled += n;
      if (this.filled === HASH_BATCH) this.send();
    }
  }

  private send(): void {
    if (!this.current) return;
    this.post(this.current, this.filled);
    this.current = null;
    this.filled = 0;
  }

  private post(buffer: ArrayBuffer, length: number): void {
    this.outstanding += buffer.byteLength;
    this.worker.postMessage({ buffer, length }, [buffer]);
  }

  /** Resolves when the worker is not too far behind (at once, usually). */
  ready(): Promise<void> {
    if (this.outstanding <= HASH_AHEAD || this.failure) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = resolve));
  }

  async digest(): Promise<Buffer> {
    this.send();
    if (this.failure) throw this.failure;
    const d = await new Promise<Buffer>((resolve) => {
      this.digestWaiter = resolve;
      this.worker.postMessage('digest');
    });
    if (this.failure) throw this.failure;
    return d;
  }

  close(): void {
    this.worker.removeAllListeners('exit');
    this.worker.on('exit', () => {});
    void this.worker.terminate();
  }
}

/** Holds back the trailing 80 bytes, hashes and passes on everything before them. */
class TrailerSplitter extends Transform {
  private held: Buffer = Buffer.alloc(0);
  readonly sha512 = new WorkerHash();
  private head: Buffer[] = [];
  private headBytes = 0;
  tarBytes = 0;
  trailer: Buffer | null = null;
  digest: Buffer | null = null;
  private readonly onEnd: (self: TrailerSplitter) => Error | null;

  constructor(onEnd: (self: TrailerSplitter) => Error | null) {
    super();
    this.onEnd = onEnd;
  }

  /** The first bytes of the tar (up to 64 KiB), where a signer hint may be. */
  firstBytes(): Buffer {
    return Buffer.concat(this.head);
  }

  private emit_(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.sha512.update(bytes);
    this.tarBytes += bytes.length;
    if (this.headBytes < 65536) {
      const part = bytes.subarray(0, 65536 - this.headBytes);
      this.head.push(Buffer.from(part));
      this.headBytes += part.length;
    }
    this.push(bytes);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (chunk.length >= TRAILER_SIZE) {
      this.emit_(this.held);
      this.emit_(chunk.subarray(0, chunk.length - TRAILER_SIZE));
      this.held = Buffer.from(chunk.subarray(chunk.length - TRAILER_SIZE));
    } else {
      const all = Buffer.concat([this.held, chunk]);
      const cut = Math.max(0, all.length - TRAILER_SIZE);
      this.emit_(all.subarray(0, cut));
      this.held = Buffer.from(all.subarray(cut));
    }
    this.sha512.ready().then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    this.trailer = this.held;
    this.sha512.digest().then(
      (digest) => {
        this.digest = digest;
        done(this.onEnd(this) ?? undefined);
      },
      (err: Error) => done(err),
    );
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.sha512.close();
    cb(err);
  }
}

/**
 * Decompresses and verifies `file` (compressed bali bytes). `tar` carries the verified tar
 * bytes (trailer excluded) and errors instead of ending when verification fails.
 */
export function openVerifiedTar(file: Readable, opts: VerifyOptions): { tar: Readable; verdict: Promise<Verdict> } {
  let fileBytes = 0;
  let fileTail: Buffer = Buffer.alloc(0);
  let fileHead: Buffer = Buffer.alloc(0);
  let verdict: Verdict | null = null;
  const counter = new PassThrough();
  counter.on('data', (c: Buffer) => {
    if (fileBytes === 0) fileHead = Buffer.from(c.subarray(0, 4));
    fileBytes += c.length;
    fileTail = c.length >= 32 ? c.subarray(c.length - 32) : Buffer.concat([fileTail, c]).subarray(-32);
  });
  const gunzip = zlib.createGunzip({ chunkSize: 1 << 20 }); // big chunks: far fewer trips through JS

  const splitter = new TrailerSplitter((s) => {
    // zlib stops at the end of the gzip member and silently drops zero bytes after it.
    if (gunzip.bytesWritten !== fileBytes) return new KrError('corrupt', `${fileBytes - gunzip.bytesWritten} unexpected bytes after the gzip stream`);
    if (!paddingIsClean(fileTail)) return new KrError('corrupt', 'corrupt gzip stream: padding bits at its end were changed');
    if (fileHead.length > 3 && fileHead[3] & 0x01) return new KrError('corrupt', 'corrupt gzip stream: unexpected FTEXT flag in the header');
    try {
      verdict = judge(s, fileBytes, opts);
      return null;
    } catch (err) {
      return err as Error;
    }
  });
  // A deep buffer lets gunzip run ahead while the consumer is busy (a burst of small files).
  const tar = new PassThrough({ highWaterMark: 16 << 20 });
  const done = pipeline(file, counter, gunzip, splitter, tar).catch((err: unknown) => {
    throw describeFailure(err);
  });
  const verdictPromise = done.then(() => verdict!);
  verdictPromise.catch(() => {}); // the caller may only watch `tar`; avoid an unhandled rejection
  return { tar, verdict: verdictPromise };
}

function judge(s: TrailerSplitter, fileBytes: number, opts: VerifyOptions): Verdict {
  const base = { tarDigest: `sha512:${s.digest!.toString('hex')}`, tarBytes: s.tarBytes, fileBytes };
  const signature = s.trailer ? parseTrailer(s.trailer) : null;
  if (!signature) {
    if (opts.insecure) return { ...base, signer: null, trusted: false, signed: false };
    throw new KrError('untrusted', 'no signature: the file ends without a bali signature trailer');
  }
  for (const key of opts.trusted) {
    if (verifyDigest(signature, s.digest!, key, SIGNATURE_CONTEXT)) return { ...base, signer: identityString(key), trusted: true, signed: true };
  }
  const hint = readSignerHint(s.firstBytes());
  const hintValid = hint !== null && verifyDigest(signature, s.digest!, hint, SIGNATURE_CONTEXT);
  if (opts.insecure) return { ...base, signer: hintValid ? identityString(hint!) : null, trusted: false, signed: true };
  if (hintValid) throw new KrError('untrusted', `untrusted signer: signed by ${identityString(hint!)}, which is not a trusted identity`);
  if (opts.trusted.length === 0) throw new KrError('untrusted', 'signed, but no trusted identity was given to check it against');
  throw new KrError('corrupt', 'bad signature: the file was changed after signing, or signed by a key that is not trusted');
}

function describeFailure(err: unknown): Error {
  if (err instanceof KrError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e && e.code === 'Z_BUF_ERROR') return new KrError('corrupt', 'truncated: the gzip stream ends early');
  if (e && (e.code === 'Z_DATA_ERROR' || e.code === 'Z_STREAM_ERROR')) {
    if (/header check/.test(e.message)) return new KrError('corrupt', 'not gzip: the file is not a gzip stream');
    return new KrError('corrupt', `corrupt gzip stream: ${e.message}`);
  }
  return withContext(err, 'reading the file');
}

/** Verifies a whole file; resolves with the verdict or rejects with a one-line KrError. */
export async function verifyFile(path: string, opts: VerifyOptions): Promise<Verdict> {
  const input = (await openSource(path)).stream;
  const { tar, verdict } = openVerifiedTar(input, opts);
  tar.resume(); // nobody consumes the bytes; we only want the verdict
  return verdict;
}
