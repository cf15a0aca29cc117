// Reading tar archives: as a stream (flatten reads layers once, front to back) or by indexing a
// file (docker archives and OCI tarballs: headers only, contents read later by byte range).
import type { FileHandle } from 'node:fs/promises';
import { KrError } from '../../util/errors.ts';
import { applyPax, decodeBlock, decodePaxRecords, isZeroBlock, type TarHeader } from './tar-header.ts';

/** The byte access the header walker needs; implemented over a stream and over a file. */
interface ByteSource {
  /** Exactly n bytes, or null at a clean end of input before the first byte. */
  read(n: number): Promise<Buffer | null>;
  skip(n: number): Promise<void>;
  readonly offset: number;
}

const MAX_META = 16 * 1024 * 1024; // a PAX or GNU long-name record this large is not a real archive

export const padOf = (size: number): number => (512 - (size % 512)) % 512;

/**
 * Reads the next real entry's header (consuming PAX and GNU long-name blocks before it).
 * Returns null at the end-of-archive marker or at the end of input.
 */
async function nextHeader(src: ByteSource, globals: Map<string, Buffer>): Promise<TarHeader | null> {
  let pax: Map<string, Buffer> | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;
  for (;;) {
    const block = await src.read(512);
    if (block === null || isZeroBlock(block)) return null;
    const { typeflag, header } = decodeBlock(block);
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (header.size > MAX_META) throw new KrError('corrupt', `tar metadata record of ${header.size} bytes`);
      const data = await mustRead(src, header.size);
      await src.skip(padOf(header.size));
      if (typeflag === 'x') pax = decodePaxRecords(data);
      else if (typeflag === 'g') for (const [k, v] of decodePaxRecords(data)) globals.set(k, v);
      else if (typeflag === 'L') longName = data.toString('latin1').replace(/\0+$/, '');
      else longLink = data.toString('latin1').replace(/\0+$/, '');
      continue;
    }
    if (longName !== null) header.path = longName;
    if (longLink !== null) header.linkname = longLink;
    if (globals.size > 0) applyPax(header, globals);
    if (pax) applyPax(header, pax);
    if (!(typeflag in DATA_TYPES)) {
      // Unknown entry types (GNU sparse, volume labels...) are skipped whole.
      await src.skip(header.size + padOf(header.size));
      continue;
    }
    return header;
  }
}

const DATA_TYPES: Record<string, true> = { '0': true, '\0': true, '7': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true };

async function mustRead(src: ByteSource, n: number): Promise<Buffer> {
  const b = n === 0 ? Buffer.alloc(0) : await src.read(n);
  if (b === null) throw new KrError('corrupt', 'tar archive is truncated');
  return b;
}

/** Buffered reader over an async iterable of chunks. */
class StreamSource implements ByteSource {
  offset = 0;
  private chunks: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  constructor(input: AsyncIterable<Buffer | Uint8Array>) {
    this.chunks = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }
  private async fill(): Promise<boolean> {
    const next = await this.chunks.next();
    if (next.done) return false;
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    this.buf = this.pos < this.buf.length ? Buffer.concat([this.buf.subarray(this.pos), chunk]) : chunk;
    this.pos = 0;
    return true;
  }
  async read(n: number): Promise<Buffer | null> {
    while (this.buf.length - this.pos < n) {
      if (!(await this.fill())) {
        if (this.buf.length - this.pos === 0) return null;
        throw new KrError('corrupt', 'tar archive is truncated');
      }
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return out;
  }
  /** Up to `max` bytes of what is buffered (filling once if empty); null at end of input. */
  async readSome(max: number): Promise<Buffer | null> {
    if (this.pos >= this.buf.length && !(await this.fill())) return null;
    const n = Math.min(max, this.buf.length - this.pos);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return out;
  }
  async skip(n: number): Promise<void> {
    while (n > 0) {
      const got = await this.readSome(n);
      if (got === null) throw new KrError('corrupt', 'tar archive is truncated');
      n -= got.length;
    }
  }
  /** Drains the rest so the producer (decompressor, file) finishes; trailing bytes are ignored. */
  async drain(): Promise<void> {
    while ((await this.readSome(1 << 20)) !== null);
  }
}

export interface TarStreamEntry {
  header: TarHeader;
  /** The entry's data in pieces; read it fully or not at all before asking for the next entry. */
  data(): AsyncGenerator<Buffer>;
}

/** Entries of a tar stream, front to back. Unread data is skipped. */
export async function* readTarStream(input: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarStreamEntry> {
  const src = new StreamSource(input);
  const globals = new Map<string, Buffer>();
  for (;;) {
    const header = await nextHeader(src, globals);
    if (header === null) break;
    // Like Go's archive/tar: only regular files carry data, whatever size other types declare.
    if (header.type !== 'file') header.size = 0;
    let remaining = header.size;
    const skipAfter = padOf(header.size);
    yield {
      header,
      async *data() {
        while (remaining > 0) {
          const piece = await src.readSome(remaining);
          if (piece === null) throw new KrError('corrupt', 'tar archive is truncated');
          remaining -= piece.length;
          yield piece;
        }
      },
    };
    if (remaining > 0) await src.skip(remaining);
    await src.skip(skipAfter);
  }
  await src.drain();
}

/** Positional reads from an open file. */
class FileSource implements ByteSource {
  offset = 0;
  private fh: FileHandle;
  private size: number;
  constructor(fh: FileHandle, size: number) {
    this.fh = fh;
    this.size = size;
  }
  async read(n: number): Promise<Buffer | null> {
    if (this.offset >= this.size) return null;
    if (this.offset + n > this.size) throw new KrError('corrupt', 'tar archive is truncated');
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await this.fh.read(buf, 0, n, this.offset);
    if (bytesRead !== n) throw new KrError('corrupt', 'tar archive is truncated');
    this.offset += n;
    return buf;
  }
  async skip(n: number): Promise<void> {
    this.offset += n;
  }
}

export interface TarIndexEntry {
  header: TarHeader;
  /** Byte offset of the entry's data in the file. */
  offset: number;
}

/** Walks a tar file's headers without reading contents: path → header and data offset. */
export async function indexTarFile(fh: FileHandle): Promise<Map<string, TarIndexEntry>> {
  const { size } = await fh.stat();
  const src = new FileSource(fh, size);
  const globals = new Map<string, Buffer>();
  const index = new Map<string, TarIndexEntry>();
  for (;;) {
    const header = await nextHeader(src, globals);
    if (header === null) break;
    if (header.type !== 'file') header.size = 0;
    if (src.offset + header.size > size) throw new KrError('corrupt', `tar entry ${header.path} runs past the end of the file`);
    index.set(normalizeArchivePath(header.path), { header, offset: src.offset });
    await src.skip(header.size + padOf(header.size));
  }
  return index;
}

/** "./a/b/" → "a/b": how archive members are named in manifests. */
export function normalizeArchivePath(p: string): string {
  return p.split('/').filter((c) => c !== '' && c !== '.').join('/');
}
