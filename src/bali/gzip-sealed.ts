// Deflate pads to byte boundaries with bits no gzip reader checks: flipping them changes the
// file but not its content, so the signature (over the content) would still verify. We end
// every stream we write the same way so that the verifier can check all padding:
//   partial flush  → an empty fixed block: bits 0,1,0 then the 7-bit end code 0000000
//   sync flush     → an empty stored block: bits 0,0,0, zero padding, then 00 00 ff ff
//   finish         → the empty final fixed block 03 00 (its last 6 bits are padding)
// So the tail is `00 00 ff ff 03 00`, the last byte must be 0, and before the stored block's
// length the stream's last set bit is the partial block's marker, followed by 11 known zero
// bits and 0–7 padding bits. A flipped padding bit breaks that shape; any other change
// breaks inflation, gzip's CRC or the signature.
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

export const SEALED_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff, 0x03]);

/** Gzip compression whose deflate stream ends with the sealed tail. */
export class SealedGzip extends Transform {
  private readonly gzip: zlib.Gzip;
  constructor(level = 6) {
    super();
    this.gzip = zlib.createGzip({ level, chunkSize: 1 << 20 });
    this.gzip.on('data', (chunk: Buffer) => this.push(chunk));
    this.gzip.on('error', (err) => this.destroy(err));
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.gzip.write(chunk)) done();
    else this.gzip.once('drain', () => done());
  }
  override _flush(done: TransformCallback): void {
    this.gzip.flush(zlib.constants.Z_PARTIAL_FLUSH, () => {
      this.gzip.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.gzip.once('end', () => done());
        this.gzip.end();
      });
    });
  }
}

/**
 * Checks the last bytes of a gzip file (its final 8 bytes are the CRC and size). Streams that
 * end otherwise (other writers) are left to inflate's own checks.
 */
export function paddingIsClean(fileTail: Buffer): boolean {
  if (fileTail.length < 17) return true;
  const deflateEnd = fileTail.subarray(fileTail.length - 17, fileTail.length - 8);
  if (!deflateEnd.subarray(3, 8).equals(SEALED_TAIL)) return true;
  if (deflateEnd[8] !== 0x00) return false;
  // Zero bits after the last set bit of the 24 bits before the stored block's length,
  // in stream order (deflate fills each byte from its least significant bit).
  const before = deflateEnd[0] | (deflateEnd[1] << 8) | (deflateEnd[2] << 16);
  if (before === 0) return false;
  const trailingZeros = 23 - (31 - Math.clz32(before));
  return trailingZeros >= 11 && trailingZeros <= 18;
}
// Known gap: when zlib stores incompressible data raw (stored blocks), each stored block's
// header byte also carries padding that inflate skips; those bits are not checked here.
