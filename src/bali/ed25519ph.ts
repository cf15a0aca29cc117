// Ed25519ph (RFC 8032 §5.1, prehash SHA-512) with a context string, over a digest computed by
// the caller. Hashing is ours (streamed with node:crypto); the curve work is @noble/curves'.
// noble's ready-made `ed25519ph` hashes the whole message itself, which would force the
// whole tar into memory, so we build the same scheme with an identity prehash instead.
import { ed25519 } from '@noble/curves/ed25519.js';
import { eddsa } from '@noble/curves/abstract/edwards.js';
import { sha512 } from '@noble/hashes/sha2.js';

const domPrefix = new TextEncoder().encode('SigEd25519 no Ed25519 collisions');

/** RFC 8032 dom2(phflag, context) prepended to the data. */
function dom2(data: Uint8Array, ctx: Uint8Array, phflag: boolean): Uint8Array {
  if (ctx.length > 255) throw new Error('Ed25519ph context longer than 255 bytes');
  const out = new Uint8Array(domPrefix.length + 2 + ctx.length + data.length);
  out.set(domPrefix, 0);
  out[domPrefix.length] = phflag ? 1 : 0;
  out[domPrefix.length + 1] = ctx.length;
  out.set(ctx, domPrefix.length + 2);
  out.set(data, domPrefix.length + 2 + ctx.length);
  return out;
}

/** RFC 8032 §5.1.5 scalar clamping. */
function clamp(bytes: Uint8Array): Uint8Array {
  bytes[0] &= 248;
  bytes[31] &= 127;
  bytes[31] |= 64;
  return bytes;
}

const prehashed = eddsa(ed25519.Point, sha512, {
  adjustScalarBytes: clamp,
  domain: dom2,
  prehash: (digest: Uint8Array) => digest, // the caller already computed SHA-512(M)
  zip215: false, // strict RFC 8032 verification, as Go's crypto/ed25519 does
});

export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(seed);
}

export function signDigest(digest: Uint8Array, seed: Uint8Array, context: Uint8Array): Uint8Array {
  if (digest.length !== 64) throw new Error('Ed25519ph signs a 64-byte SHA-512 digest');
  return prehashed.sign(digest, seed, { context });
}

export function verifyDigest(signature: Uint8Array, digest: Uint8Array, publicKey: Uint8Array, context: Uint8Array): boolean {
  if (signature.length !== 64 || digest.length !== 64 || publicKey.length !== 32) return false;
  try {
    return prehashed.verify(signature, digest, publicKey, { context });
  } catch {
    return false;
  }
}
