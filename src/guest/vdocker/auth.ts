// The per-pod secret: only the host that launched the pod knows it (it travels in the launch
// spec), and every request to vdocker must carry it as "Authorization: Bearer <secret>".
// Compared in constant time over SHA-256 digests, so neither content nor length leaks by timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { KrError } from '../../util/errors.ts';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function checkSecret(secret: string): string {
  if (typeof secret !== 'string' || secret.length < 16 || !/^[\x21-\x7e]+$/.test(secret)) {
    throw new KrError('invalid', 'the pod secret must be at least 16 printable ASCII characters');
  }
  return secret;
}

/** A checker bound to one secret: true when the request carries it. */
export function bearerCheck(secret: string): (req: IncomingMessage) => boolean {
  const want = digest(checkSecret(secret));
  return (req) => {
    const h = req.headers.authorization;
    if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
    return timingSafeEqual(digest(h.slice(7)), want);
  };
}
