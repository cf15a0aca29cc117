// A tar file (optionally gzip-compressed) whose members are read by byte range, never extracted.
// A plain tar is indexed in place (headers only). A gzipped one cannot be seeked, so it is
// decompressed once into an unlinked temp file (in tmpDir) and indexed there; close() frees it.
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { KrError, withContext } from '../../util/errors.ts';
import { indexTarFile, normalizeArchivePath, type TarIndexEntry } from './tar-reader.ts';

export class ArchiveFile {
  readonly path: string;
  private fh: FileHandle;
  private index: Map<string, TarIndexEntry>;

  private constructor(path: string, fh: FileHandle, index: Map<string, TarIndexEntry>) {
    this.path = path;
    this.fh = fh;
    this.index = index;
  }

  static async open(path: string, tmpDir = tmpdir()): Promise<ArchiveFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw withContext(err, `archive ${path}`);
    }
    try {
      const head = Buffer.alloc(2);
      await fh.read(head, 0, 2, 0);
      if (head[0] === 0x1f && head[1] === 0x8b) {
        const plain = await gunzipToTemp(fh, tmpDir, path);
        await fh.close();
        fh = plain;
      }
      return new ArchiveFile(path, fh, await indexTarFile(fh));
    } catch (err) {
      await fh.close().catch(() => {});
      if (err instanceof KrError) throw new KrError(err.kind, `archive ${path}: ${err.message}`, { cause: err });
      if ((err as { code?: string }).code?.startsWith('Z_')) throw new KrError('corrupt', `archive ${path}: bad gzip data`, { cause: err });
      throw withContext(err, `archive ${path}`);
    }
  }

  has(name: string): boolean {
    const e = this.index.get(normalizeArchivePath(name));
    return e !== undefined && e.header.type === 'file';
  }

  names(): string[] {
    return [...this.index.keys()];
  }

  entry(name: string): TarIndexEntry | undefined {
    const e = this.index.get(normalizeArchivePath(name));
    return e && e.header.type === 'file' ? e : undefined;
  }

  /** A member's bytes, or null when there is no such regular file. */
  async read(name: string, maxBytes = 64 * 1024 * 1024): Promise<Buffer | null> {
    const e = this.entry(name);
    if (!e) return null;
    if (e.header.size > maxBytes) throw new KrError('corrupt', `archive ${this.path}: ${name} is implausibly large`);
    const buf = Buffer.alloc(e.header.size);
    const { bytesRead } = await this.fh.read(buf, 0, buf.length, e.offset);
    if (bytesRead !== buf.length) throw new KrError('corrupt', `archive ${this.path}: ${name} is truncated`);
    return buf;
  }

  /** The first `n` bytes of a member (fewer if it is shorter). */
  async head(name: string, n: number): Promise<Buffer> {
    const e = this.entry(name);
    if (!e) throw new KrError('not-found', `archive ${this.path}: ${name} missing`);
    const buf = Buffer.alloc(Math.min(n, e.header.size));
    await this.fh.read(buf, 0, buf.length, e.offset);
    return buf;
  }

  /** A stream over a member's bytes (the file stays open; streams do not close it). */
  openMember(name: string): Readable {
    const e = this.entry(name);
    if (!e) throw new KrError('not-found', `archive ${this.path}: ${name} missing`);
    if (e.header.size === 0) return Readable.from([]);
    return rangeStream(this.fh, e.offset, e.header.size);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function gunzipToTemp(src: FileHandle, tmpDir: string, what: string): Promise<FileHandle> {
  const path = join(tmpDir, `kraud-archive-${process.pid}-${randomBytes(6).toString('hex')}.tar`);
  const out = await open(path, 'wx+', 0o600);
  await unlink(path);
  let position = 0;
  // fs streams close their descriptor when destroyed, so both ends here are our own streams over
  // the FileHandles, which stay open for the range reads that follow.
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.write(chunk, 0, chunk.length, position).then(({ bytesWritten }) => {
        position += bytesWritten;
        done(bytesWritten === chunk.length ? null : new Error('short write'));
      }, done);
    },
  });
  try {
    await pipeline(rangeStream(src, 0, (await src.stat()).size), createGunzip(), sink);
  } catch (err) {
    await out.close().catch(() => {});
    if ((err as { code?: string }).code?.startsWith('Z_')) throw new KrError('corrupt', `${what}: bad gzip data`, { cause: err });
    throw err;
  }
  return out;
}

/** A stream of `length` bytes at `start` of an open file; destroying it leaves the file open. */
export function rangeStream(fh: FileHandle, start: number, length: number): Readable {
  let pos = start;
  const end = start + length;
  return new Readable({
    highWaterMark: 1 << 20,
    read(size: number) {
      const n = Math.min(Math.max(size, 64 * 1024), end - pos);
      if (n <= 0) {
        this.push(null);
        return;
      }
      const buf = Buffer.allocUnsafe(n);
      fh.read(buf, 0, n, pos).then(({ bytesRead }) => {
        if (bytesRead === 0) return this.destroy(new KrError('corrupt', 'archive member is truncated'));
        pos += bytesRead;
        this.push(bytesRead === n ? buf : buf.subarray(0, bytesRead));
      }, (err: Error) => this.destroy(err));
    },
  });
}
