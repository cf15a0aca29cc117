// A PAX global extended header (typeflag 'g') as the first entry of a tar: how kraud carries
// metadata (image config, signer) inside a rootfs tar without adding a file to the rootfs.
// GNU tar, bsdtar and tar-stream skip it silently; its records follow POSIX pax:
// "<length> <key>=<value>\n", where <length> counts the whole record including itself.

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return Buffer.from(`${len}${body}`);
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One 512-byte ustar header block. */
function ustarHeader(name: string, size: number, typeflag: string, mtime: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write(octal(0o644, 8), 100);
  b.write(octal(0, 8), 108);
  b.write(octal(0, 8), 116);
  b.write(octal(size, 12), 124);
  b.write(octal(mtime, 12), 136);
  b.write('        ', 148);
  b.write(typeflag, 156);
  b.write('ustar\0', 257);
  b.write('00', 263);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(octal(sum, 7) + ' ', 148);
  return b;
}

/** The header block plus the padded record data; empty when there are no records. */
export function encodePaxGlobalHeader(records: Record<string, string>): Buffer {
  const entries = Object.entries(records);
  if (entries.length === 0) return Buffer.alloc(0);
  const data = Buffer.concat(entries.map(([k, v]) => paxRecord(k, v)));
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([ustarHeader('pax_global_header', data.length, 'g', 0), data, pad]);
}

/** The records of a leading PAX global header in `firstBytes`, or null if the tar has none. */
export function readPaxGlobalRecords(firstBytes: Buffer): Record<string, string> | null {
  if (firstBytes.length < 512 || firstBytes[156] !== 0x67 /* 'g' */) return null;
  const size = parseInt(firstBytes.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  if (!Number.isFinite(size) || size < 0 || 512 + size > firstBytes.length) return null;
  const data = firstBytes.subarray(512, 512 + size);
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(data.subarray(pos, space).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > data.length) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}
