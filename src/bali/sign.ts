// Writing bali files: tar bytes in, one gzip member out, with the signed trailer appended
// inside the gzip stream after the last tar byte. The tar is streamed, never held in memory.
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { HashTap } from '../util/hash-tap.ts';
import { signDigest } from './ed25519ph.ts';
import { buildTrailer, SIGNATURE_CONTEXT } from './format.ts';
import { SealedGzip } from './gzip-sealed.ts';
import type { SigningKey } from './keys.ts';

/** Hashes the tar bytes on their way to gzip and, at the end, appends the signed trailer. */
export class TrailerSigner extends Transform {
  private readonly sha512: Hash = createHash('sha512');
  private readonly key: SigningKey | null;
  tarBytes = 0;
  digest: Buffer | null = null;

  constructor(key: SigningKey | null) {
    super();
    this.key = key;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.sha512.update(chunk);
    this.tarBytes += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.digest = this.sha512.digest();
    if (this.key) this.push(buildTrailer(signDigest(this.digest, this.key.seed, SIGNATURE_CONTEXT)));
    done();
  }
}

export interface WrittenFile {
  path: string;
  /** sha256 of the file as written: what to pin a download to. */
  fileDigest: string;
  fileBytes: number;
  /** sha512 of the signed tar bytes (the Ed25519ph prehash). */
  tarDigest: string;
  tarBytes: number;
  signer: string | null;
}

/** Writes `tar` to `target` as a bali file (signed with `key`, or unsigned when null). */
export async function writeBaliFile(target: string, tar: Readable, key: SigningKey | null, gzipLevel = 6): Promise<WrittenFile> {
  const signer = new TrailerSigner(key);
  const fileHash = new HashTap('sha256');
  const fileBytes = await writeFileAtomic(target, tar, signer, new SealedGzip(gzipLevel), fileHash);
  return {
    path: target,
    fileDigest: `sha256:${fileHash.hash.digest('hex')}`,
    fileBytes,
    tarDigest: `sha512:${signer.digest!.toString('hex')}`,
    tarBytes: signer.tarBytes,
    signer: key ? key.identity : null,
  };
}
