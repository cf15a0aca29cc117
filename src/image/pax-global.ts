// A PAX global extended header (typeflag 'g') as the first entry of a tar: how kraud carries
// metadata (image config, signer) inside a rootfs tar without adding a file to the rootfs.
// GNU tar, bsdtar and our extractor skip it silently.
import { decodeBlock, decodePaxRecords } from './tar/tar-header.ts';
import { padding, paxRecord, ustarBlock } from './tar/tar-writer.ts';

/** The header block plus the padded record data; empty when there are no records. */
export function encodePaxGlobalHeader(records: Record<string, string>): Buffer {
  const entries = Object.entries(records);
  if (entries.length === 0) return Buffer.alloc(0);
  const data = Buffer.concat(entries.map(([k, v]) => paxRecord(k, Buffer.from(v, 'utf8'))));
  const block = ustarBlock({ name: 'pax_global_header', typeflag: 'g', mode: 0o666, size: data.length, mtime: 0 });
  return Buffer.concat([block, data, padding(data.length)]);
}

/** The records of a leading PAX global header in `firstBytes`, or null if the tar has none. */
export function readPaxGlobalRecords(firstBytes: Buffer): Record<string, string> | null {
  if (firstBytes.length < 512 || firstBytes[156] !== 0x67 /* 'g' */) return null;
  let size: number;
  try {
    size = decodeBlock(firstBytes.subarray(0, 512)).header.size;
  } catch {
    return null;
  }
  if (512 + size > firstBytes.length) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of decodePaxRecords(firstBytes.subarray(512, 512 + size))) out[k] = v.toString('utf8');
  return out;
}
