// What a bali file says about itself: digests, sizes, signer and the carried image config.
// Reads the file once; trust is only claimed against identities the caller passed.
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { openSource } from '../util/fetch.ts';
import { readPaxGlobalRecords } from '../image/pax-global.ts';
import { CONFIG_RECORD } from '../image/config-header.ts';
import { openVerifiedTar } from './verify.ts';

export interface FileInfo {
  file: string;
  fileBytes: number;
  fileDigest: string;
  tarBytes: number;
  tarDigest: string;
  signed: boolean;
  signer: string | null;
  trusted: boolean;
  signerSummary: string;
  config: unknown;
}

export async function inspectFile(file: string, trusted: Uint8Array[]): Promise<FileInfo> {
  const input = (await openSource(file)).stream;
  const fileHash = createHash('sha256');
  const tap = new PassThrough();
  tap.on('data', (c: Buffer) => fileHash.update(c));
  input.pipe(tap);
  const { tar, verdict } = openVerifiedTar(tap, { trusted, insecure: true });
  const head: Buffer[] = [];
  let headBytes = 0;
  tar.on('data', (c: Buffer) => {
    if (headBytes < 1 << 20) {
      head.push(c);
      headBytes += c.length;
    }
  });
  const v = await verdict;
  const records = readPaxGlobalRecords(Buffer.concat(head)) ?? {};
  let config: unknown = null;
  if (records[CONFIG_RECORD]) {
    try {
      config = JSON.parse(records[CONFIG_RECORD]);
    } catch {
      config = { unreadable: records[CONFIG_RECORD].slice(0, 200) };
    }
  }
  const signerSummary = !v.signed
    ? 'unsigned'
    : v.trusted
      ? `${v.signer} (signature valid, trusted)`
      : v.signer
        ? `${v.signer} (signature valid${trusted.length ? '; NOT a trusted identity' : '; pass --identity to check trust'})`
        : `unknown (signed, but the file does not name its signer${trusted.length ? ' and no trusted identity matches' : '; pass --identity to check'})`;
  return {
    file,
    fileBytes: v.fileBytes,
    fileDigest: `sha256:${fileHash.digest('hex')}`,
    tarBytes: v.tarBytes,
    tarDigest: v.tarDigest,
    signed: v.signed,
    signer: v.signer,
    trusted: v.trusted,
    signerSummary,
    config,
  };
}
