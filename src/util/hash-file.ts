// Hashing a whole file synchronously in 1 MiB reads: for cache keys, where the caller needs the
// answer before it can go on anyway.
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';

export function hashFileInto(hash: Hash, file: string): Hash {
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash;
}

export function sha256File(file: string): string {
  return hashFileInto(createHash('sha256'), file).digest('hex');
}
