// Checking blob bytes against the digest that names them, while they stream.
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { KrError } from '../util/errors.ts';

export function sha256Digest(bytes: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

function algorithmOf(digest: string): string {
  const alg = digest.slice(0, digest.indexOf(':'));
  if (alg !== 'sha256' && alg !== 'sha512') throw new KrError('invalid', `unsupported digest algorithm in ${digest}`);
  return alg;
}

export function checkBytes(bytes: Buffer, digest: string, what: string): void {
  const actual = algorithmOf(digest) + ':' + createHash(algorithmOf(digest)).update(bytes).digest('hex');
  if (actual !== digest) throw new KrError('corrupt', `${what}: content is ${actual}, expected ${digest}`);
}

/** Passes bytes through; at the end fails with KrError 'corrupt' if digest or size differ. */
export function verifying(source: Readable, digest: string, size: number | undefined, what: string): Readable {
  const alg = algorithmOf(digest);
  const hash = createHash(alg);
  let seen = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      hash.update(chunk);
      seen += chunk.length;
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      const actual = `${alg}:${hash.digest('hex')}`;
      if (size !== undefined && seen !== size) return done(new KrError('corrupt', `${what}: ${seen} bytes, expected ${size}`));
      if (actual !== digest) return done(new KrError('corrupt', `${what}: content is ${actual}, expected ${digest}`));
      done();
    },
  });
  source.on('error', (err) => check.destroy(err));
  check.on('close', () => source.destroy());
  return source.pipe(check);
}
