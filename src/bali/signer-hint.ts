// A signed bali file made by us names its signer in the tar's leading PAX global header
// (record `KRAUD.signer=<identity>`). The name is covered by the signature, so it can tell
// "signed by someone you don't trust" apart from "damaged". It is a hint only: trust always
// comes from the caller's identities, never from the file.
import { parseIdentity } from './keys.ts';
import { readPaxGlobalRecords } from '../image/pax-global.ts';

export const SIGNER_RECORD = 'KRAUD.signer';

export function readSignerHint(firstBytes: Buffer): Uint8Array | null {
  const value = readPaxGlobalRecords(firstBytes)?.[SIGNER_RECORD];
  if (!value) return null;
  try {
    return parseIdentity(value);
  } catch {
    return null;
  }
}
