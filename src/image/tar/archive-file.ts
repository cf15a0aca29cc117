// A tar file (optionally gzip-compressed) whose members are read by byte range, never extracted.
// A plain tar is indexed in place (headers only). A gzipped one cannot be seeked, so it is
// decompressed once into an unlinked temp file (in tmpDir) and indexed there; close() frees it.
import { createReadStream, createWriteStream } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
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

  /** A stream over a member's bytes (the file stays open; streams do not close it). */
  openMember(name: string): Readable {
    const e = this.entry(name);
    if (!e) throw new KrError('not-found', `archive ${this.path}: ${name} missing`);
    if (e.header.size === 0) return Readable.from([]);
    return createReadStream('', { fd: this.fh, start: e.offset, end: e.offset + e.header.size - 1, autoClose: false });
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function gunzipToTemp(src: FileHandle, tmpDir: string, what: string): Promise<FileHandle> {
  const path = join(tmpDir, `kraud-archive-${process.pid}-${randomBytes(6).toString('hex')}.tar`);
  const out = await open(path, 'wx+', 0o600);
  await unlink(path);
  try {
    await pipeline(
      createReadStream('', { fd: src, start: 0, autoClose: false }),
      createGunzip(),
      // The same descriptor is read from afterwards, so the write stream must not close it.
      createWriteStream('', { fd: out, autoClose: false }),
    );
  } catch (err) {
    await out.close().catch(() => {});
    if ((err as { code?: string }).code?.startsWith('Z_')) throw new KrError('corrupt', `${what}: bad gzip data`, { cause: err });
    throw err;
  }
  return out;
}
