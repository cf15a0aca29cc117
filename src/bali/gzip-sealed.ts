// Deflate leaves up to 7 unused padding bits in its last byte, which no gzip reader checks:
// flipping them changes the file but not its content, so the signature would still verify.
// We end every stream we write the same way — a sync flush, then the empty final block —
// giving the fixed tail `00 00 ff ff 03 00`, whose last byte carries only padding. The
// verifier requires that byte to be zero whenever the tail has this shape, so with our files
// any single-byte change anywhere past the gzip header's MTIME/XFL/OS bytes is caught.
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

export const SEALED_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff, 0x03]);

/** Gzip compression whose deflate stream ends with the sealed tail. */
export class SealedGzip extends Transform {
  private readonly gzip: zlib.Gzip;
  constructor(level = 6) {
    super();
    this.gzip = zlib.createGzip({ level });
    this.gzip.on('data', (chunk: Buffer) => this.push(chunk));
    this.gzip.on('error', (err) => this.destroy(err));
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.gzip.write(chunk)) done();
    else this.gzip.once('drain', () => done());
  }
  override _flush(done: TransformCallback): void {
    this.gzip.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      this.gzip.once('end', () => done());
      this.gzip.end();
    });
  }
}

/**
 * Checks the last bytes of a gzip file (its final 8 bytes are the CRC and size): when the
 * deflate stream ends with the sealed tail, its padding byte must be zero.
 */
export function paddingIsClean(fileTail: Buffer): boolean {
  if (fileTail.length < 14) return true;
  const deflateEnd = fileTail.subarray(fileTail.length - 14, fileTail.length - 8);
  if (!deflateEnd.subarray(0, 5).equals(SEALED_TAIL)) return true;
  return deflateEnd[5] === 0x00;
}
