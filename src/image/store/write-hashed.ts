// Receiving a blob's bytes into its temp file: hashed as they arrive and checked against the
// expected size, written in order. The blob store (../store.ts) checks the digest and publishes.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { KrError } from '../../util/errors.ts';
import { HashWriter } from '../../util/hash-worker.ts';
import { writeAll } from '../../util/write-all.ts';

export interface ReceiveOptions {
  /** Expected size in bytes; more or fewer bytes throw KrError('corrupt'). */
  size?: number;
  /** Called as bytes arrive, with the running total. */
  onBytes?: (received: number) => void;
  /**
   * The source's chunks are fresh buffers nobody else reads (node:http response bodies): the
   * store may hand them to its hash worker, which hashes and writes them off the main thread.
   */
  detachable?: boolean;
}

// Bytes are hashed as they arrive and written in batches: one write is in flight at a time and
// what arrives meanwhile is written next, in one writev (hundreds of KB instead of one
// thread-pool round trip per 64 KB socket read). Past WRITE_QUEUE_MAX queued bytes the source
// is paused until the disk catches up. Node Readables are read with 'data' events (~7% less
// CPU than async iteration at this chunk rate); other iterables with for await.
// A detachable source of a large (or unknown-size) blob is hashed and written on the hash
// worker instead (util/hash-worker.ts): chunks go over in batches of WORKER_BATCH bytes.
const WRITE_QUEUE_MAX = 4 << 20;
const WORKER_MIN_SIZE = 64 << 10;
const WORKER_BATCH = 512 << 10;

/** Where writeHashed puts the bytes: hashes and writes them, in order. */
interface HashSink {
  /** Takes one chunk; false when the source should wait for room(). Throws a write error. */
  take(chunk: Uint8Array): boolean;
  room(): Promise<void>;
  /** All bytes written (or the first write error thrown); the hex digest. */
  finish(): Promise<string>;
  /** After a failure: resolves once nothing writes to the file any more. */
  abandon(): Promise<void>;
}

function inlineSink(handle: FileHandle): HashSink {
  const hash = createHash('sha256');
  let queue: Uint8Array[] = [];
  let queued = 0;
  let writing: Promise<void> | undefined;
  let writeError: { err: unknown } | undefined;
  let waiters: (() => void)[] = [];
  const wakeAll = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const startWrite = () => {
    const batch = queue;
    queue = [];
    queued = 0;
    writing = writeAll(handle, batch).then(
      () => {
        writing = undefined;
        if (queue.length && !writeError) startWrite();
        wakeAll();
      },
      (err) => {
        writing = undefined;
        writeError ??= { err };
        wakeAll();
      },
    );
  };
  return {
    take(chunk) {
      if (writeError) throw writeError.err;
      hash.update(chunk);
      queue.push(chunk);
      queued += chunk.length;
      if (!writing) startWrite();
      return queued < WRITE_QUEUE_MAX;
    },
    room: () => new Promise<void>((resolve) => (queued < WRITE_QUEUE_MAX || writeError ? resolve() : waiters.push(resolve))),
    async finish() {
      for (;;) {
        if (writeError) throw writeError.err;
        if (!writing && !queue.length) break;
        if (!writing) startWrite();
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
      return hash.digest('hex');
    },
    async abandon() {
      queue = [];
      while (writing) await writing;
    },
  };
}

function workerSink(handle: FileHandle): HashSink {
  const writer = new HashWriter(handle.fd);
  let batch: Uint8Array[] = [];
  let batched = 0;
  const flush = () => {
    if (!batched) return;
    writer.write(batch, batched);
    batch = [];
    batched = 0;
  };
  return {
    take(chunk) {
      if (writer.error) throw writer.error;
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= WORKER_BATCH) flush();
      return writer.pending < WRITE_QUEUE_MAX;
    },
    room: () => writer.room(WRITE_QUEUE_MAX),
    finish() {
      flush();
      return writer.end();
    },
    async abandon() {
      await writer.end(true);
    },
  };
}

/** Writes `source` into `handle`; the byte count and the sha256 digest of what was written. */
export async function writeHashed(
  source: Readable | AsyncIterable<Uint8Array>,
  handle: FileHandle,
  options: ReceiveOptions,
): Promise<{ received: number; digest: string }> {
  const { size: expectedSize, onBytes } = options;
  const offThread = options.detachable === true && (expectedSize === undefined || expectedSize >= WORKER_MIN_SIZE);
  const sink = offThread ? workerSink(handle) : inlineSink(handle);
  let received = 0;
  /** Takes one chunk; returns false when the source should wait for room(). */
  const take = (chunk: Uint8Array): boolean => {
    received += chunk.length;
    if (expectedSize !== undefined && received > expectedSize) {
      throw new KrError('corrupt', `size mismatch: more than the expected ${expectedSize} bytes`);
    }
    const more = sink.take(chunk);
    onBytes?.(received);
    return more;
  };

  try {
    if (source instanceof Readable) {
      await new Promise<void>((resolve, reject) => {
        let done = false;
        const finish = (err?: unknown) => {
          if (done) return;
          done = true;
          source.off('data', onData);
          source.off('end', onEnd);
          source.off('error', finish);
          source.off('close', onClose);
          if (err === undefined) resolve();
          else {
            source.destroy();
            reject(err);
          }
        };
        const onData = (chunk: Uint8Array) => {
          try {
            if (!take(chunk)) {
              source.pause();
              void sink.room().then(() => done || source.resume());
            }
          } catch (err) {
            finish(err);
          }
        };
        const onEnd = () => finish();
        const onClose = () => finish(source.errored ?? new Error('stream closed before its end'));
        // The source may have been destroyed or drained (node:http dumps the body of an aborted
        // download) while the temp file was being opened: its 'end'/'close' already happened and
        // will not come again, so look instead of waiting forever.
        if (source.destroyed || source.readableEnded) return finish(source.errored ?? new Error('stream closed before it could be read'));
        source.on('data', onData);
        source.on('end', onEnd);
        source.on('error', finish);
        source.on('close', onClose);
      });
    } else {
      for await (const chunk of source) if (!take(chunk)) await sink.room();
    }
    return { received, digest: 'sha256:' + (await sink.finish()) };
  } catch (err) {
    // The caller closes the file next: nothing may still be writing to its descriptor.
    await sink.abandon();
    throw err;
  }
}
