// identitykit key strings, byte-compatible with the original (devguardio/identity):
//   "c" + base32(RFC 4648, upper case, no padding) of [0x10 | type, payload..., crc8]
// The crc8 starts at 0 and runs over the header byte and the payload with identitykit's table.
import { base32nopad } from '@scure/base';
import { KrError } from '../util/errors.ts';

export const KeyType = { secret: 3, identity: 9, signature: 10 } as const;
export type KeyTypeName = keyof typeof KeyType;

const typeNames: Record<number, string> = { 3: 'secret', 9: 'identity', 10: 'signature' };

// identitykit's table is the reflected CRC-8 table for polynomial 0x4d with every entry
// XOR 0xea (its init/xorout folded into the table); the test vector in the tests pins it.
const crcTable: Uint8Array = (() => {
  const table = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ 0xb2 : c >>> 1;
    table[i] = c ^ 0xea;
  }
  return table;
})();

export function crc8(bytes: Uint8Array, crc = 0): number {
  for (const b of bytes) crc = crcTable[(crc ^ b) & 0xff];
  return crc;
}

export function encodeKeyString(type: KeyTypeName, payload: Uint8Array): string {
  const raw = new Uint8Array(payload.length + 2);
  raw[0] = 0x10 | KeyType[type];
  raw.set(payload, 1);
  raw[raw.length - 1] = crc8(raw.subarray(0, raw.length - 1));
  return 'c' + base32nopad.encode(raw);
}

/** Decodes a key string of the expected type and payload size; a clear one-line error otherwise. */
export function decodeKeyString(text: string, type: KeyTypeName, size: number): Uint8Array {
  const s = text.trim();
  const what = typeNames[KeyType[type]];
  if (s.length < 3 || s[0] !== 'c') throw new KrError('invalid', `not a ${what} string: expected "c" followed by base32`);
  let raw: Uint8Array;
  try {
    raw = base32nopad.decode(s.slice(1).toUpperCase());
  } catch {
    throw new KrError('invalid', `not a ${what} string: bad base32`);
  }
  if (raw.length !== size + 2) throw new KrError('invalid', `not a ${what} string: wrong length`);
  if (raw[0] >> 4 !== 1) throw new KrError('invalid', `not a ${what} string: unknown version ${raw[0] >> 4}`);
  const got = raw[0] & 0x0f;
  if (got !== KeyType[type]) throw new KrError('invalid', `expected a ${what} string, got a ${typeNames[got] ?? `type ${got}`} string`);
  if (crc8(raw.subarray(0, raw.length - 1)) !== raw[raw.length - 1]) throw new KrError('invalid', `${what} string has a bad checksum (mistyped?)`);
  const payload = raw.slice(1, raw.length - 1);
  // identitykit refuses keys made of one repeated byte (an all-zero key is a classic accident).
  if (payload.every((b) => b === payload[0])) throw new KrError('invalid', `${what} string holds a degenerate key`);
  return payload;
}
