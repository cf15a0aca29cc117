// File contents of all layers, appended to one unlinked temp file: nothing large stays in
// memory, and the OS reclaims the space even if the process dies mid-way.
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeAll } from '../../util/write-all.ts';

const FLUSH_AT = 4 * 1024 * 1024;

export class Spool {
  private fh: FileHandle;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushedTo = 0;
  /** Bytes appended so far: the offset the next append lands at. */
  size = 0;

  private constructor(fh: FileHandle) {
    this.fh = fh;
  }

  static async create(dir = tmpdir()): Promise<Spool> {
    const path = join(dir, `kraud-flatten-${process.pid}-${randomBytes(6).toString('hex')}.spool`);
    const fh = await open(path, 'wx+', 0o600);
    await unlink(path);
    return new Spool(fh);
  }

  /** Appends bytes (the buffer must not be reused by the caller). */
  async append(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.size += chunk.length;
    if (this.pendingBytes >= FLUSH_AT) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const buffers = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    await writeAll(this.fh, buffers, this.flushedTo);
    this.flushedTo += bytes;
  }

  /** Reads `length` bytes at `offset` (after flush()). */
  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new Error('spool file shorter than expected');
      done += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
