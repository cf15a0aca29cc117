// Signing a rootfs tarball made elsewhere (plain or gzip): its tar bytes are kept exactly as
// they are; only the trailer is added. A file that does not start with a tar header is refused.
import fs from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { KrError, withContext } from '../util/errors.ts';
import { isTarHeader } from './format.ts';
import type { SigningKey } from './keys.ts';
import { writeBaliFile, type WrittenFile } from './sign.ts';

/** Signs an existing rootfs tarball (plain or gzip) keeping its tar bytes exactly as they are. */
export async function signTarFile(input: string, target: string, key: SigningKey): Promise<WrittenFile> {
  let fd: number;
  try {
    fd = fs.openSync(input, 'r');
  } catch (err) {
    throw withContext(err, `cannot open ${input}`);
  }
  const magic = Buffer.alloc(2);
  fs.readSync(fd, magic, 0, 2, 0);
  const raw = fs.createReadStream('', { fd, highWaterMark: 1 << 20 });
  const tar: Readable = magic[0] === 0x1f && magic[1] === 0x8b ? raw.pipe(zlib.createGunzip()) : raw;
  raw.on('error', (err) => tar.destroy(err));
  return writeBaliFile(target, requireTar(tar, input), key).catch((err) => {
    throw err instanceof KrError && /incorrect header|unexpected end/.test(err.message) ? new KrError('corrupt', `${input} is not a valid gzip file`) : err;
  });
}

/** Passes a stream through after checking that it starts with a valid tar header. */
function requireTar(stream: Readable, name: string): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  let head: Buffer | null = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    if (head !== null) {
      head = Buffer.concat([head, chunk]);
      if (head.length < 512) return;
      if (!isTarHeader(head.subarray(0, 512))) {
        out.destroy(new KrError('corrupt', `${name} is not a tar archive`));
        stream.destroy();
        return;
      }
      chunk = head;
      head = null;
    }
    if (!out.write(chunk)) {
      stream.pause();
      out.once('drain', () => stream.resume());
    }
  });
  stream.on('end', () => {
    if (head !== null) out.destroy(new KrError('corrupt', `${name} is not a tar archive (too short)`));
    else out.end();
  });
  stream.on('error', (err) => out.destroy(err));
  return out;
}
