// The bali file: one gzip member whose decompressed bytes are a tar followed by an 80-byte
// trailer: 8 zero bytes, "iksig\0\0\0", then a 64-byte Ed25519ph signature (context "bali")
// over SHA-512 of every decompressed byte before the trailer. GNU tar stops at the tar's
// end-of-archive blocks and ignores the trailer, so a signed file is still a plain tar.gz.

export const SIGNATURE_CONTEXT = new TextEncoder().encode('bali');
export const TRAILER_SIZE = 80;
const MAGIC = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0x69, 0x6b, 0x73, 0x69, 0x67, 0, 0, 0]); // 8×0, "iksig\0\0\0"

export function buildTrailer(signature: Uint8Array): Buffer {
  if (signature.length !== 64) throw new Error('signature must be 64 bytes');
  return Buffer.concat([MAGIC, signature]);
}

/** The signature inside a trailer, or null when the 80 bytes are not a trailer. */
export function parseTrailer(trailer: Buffer): Uint8Array | null {
  if (trailer.length !== TRAILER_SIZE) return null;
  if (!trailer.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  return new Uint8Array(trailer.subarray(MAGIC.length));
}

/** True when a 512-byte block is a tar header with a valid checksum (ustar or old v7). */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i];
  return sum === stored;
}
