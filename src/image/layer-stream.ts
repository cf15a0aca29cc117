// A layer's bytes uncompressed: gunzip or zstd by media type, and by magic bytes when the media
// type does not say (docker archives' layer.tar may be gzip; "tar" media types are trusted less
// than the bytes).
import type { Readable } from 'node:stream';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import type { Layer } from './types.ts';

export type Compression = 'gzip' | 'zstd' | 'none';

export function compressionOfMediaType(mediaType: string): Compression | null {
  if (/gzip$/.test(mediaType)) return 'gzip';
  if (/zstd$/.test(mediaType)) return 'zstd';
  return null;
}

export function compressionOfBytes(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Reads at least n bytes (fewer at end of stream) and pushes them back. */
export function peek(stream: Readable, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const seen: Buffer[] = [];
    let have = 0;
    const finish = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', finish);
      stream.off('error', onError);
      const all = Buffer.concat(seen);
      if (all.length > 0) stream.unshift(all);
      resolve(all);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (have < n && (chunk = stream.read() as Buffer | null) !== null) {
        seen.push(chunk);
        have += chunk.length;
      }
      if (have >= n) finish();
    };
    const onError = (e: Error): void => {
      stream.off('readable', onReadable);
      stream.off('end', finish);
      reject(e);
    };
    stream.on('readable', onReadable);
    stream.once('end', finish);
    stream.once('error', onError);
  });
}

/** Wraps a raw layer stream in the right decompressor. Errors of the source reach the result. */
export async function uncompressed(raw: Readable, mediaType: string): Promise<Readable> {
  const kind = compressionOfMediaType(mediaType) ?? compressionOfBytes(await peek(raw, 4));
  if (kind === 'none') return raw;
  // Big output chunks: each chunk is a round trip to the thread pool, and small ones dominate.
  const zopts = { chunkSize: 256 * 1024 };
  const decompressor = kind === 'gzip' ? createGunzip(zopts) : createZstdDecompress(zopts);
  raw.on('error', (err) => decompressor.destroy(err));
  decompressor.on('close', () => raw.destroy());
  return raw.pipe(decompressor);
}

export async function openUncompressed(layer: Layer): Promise<Readable> {
  return uncompressed(await layer.open(), layer.descriptor.mediaType);
}
