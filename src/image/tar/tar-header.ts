// The tar entry as kraud reads and writes it, plus the pure decoding of header blocks and PAX
// records. Our own code rather than tar-stream's because tar-stream decodes PAX values as UTF-8
// (which destroys binary xattrs such as security.capability) and ignores PAX uid/gid/mtime.
//
// Names are kept as "binary" strings (latin1: one char per byte) end to end, so any byte sequence
// a layer carries comes out unchanged, and sorting them sorts by bytes.
import { KrError } from '../../util/errors.ts';

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  path: string;
  type: TarType;
  /** Permission bits including setuid/setgid/sticky (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch (whole seconds). */
  mtime: number;
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes, name → raw value; null when there are none. */
  xattrs: Map<string, Buffer> | null;
}

/** What a header block sequence (pax, long names, then the real header) decodes to. */
export interface RawBlock {
  typeflag: string;
  header: TarHeader;
}

function parseNumber(block: Buffer, offset: number, length: number): number {
  // GNU base-256: the high bit of the first byte set.
  if (block[offset] & 0x80) {
    let value = 0;
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + block[i];
    return block[offset] === 0xff ? -(2 ** ((length - 1) * 8) - value) : value;
  }
  let end = offset + length;
  let start = offset;
  while (start < end && (block[start] === 0x20 || block[start] === 0)) start++;
  let stop = start;
  while (stop < end && block[stop] >= 0x30 && block[stop] <= 0x37) stop++;
  if (stop === start) return 0;
  return parseInt(block.toString('latin1', start, stop), 8);
}

/**
 * The size field, strictly: garbage after the digits or a negative base-256 value would make the
 * reader lose its place in the archive, so both are refused (as GNU tar does).
 */
function parseSize(block: Buffer, path: string): number {
  const size = parseNumber(block, 124, 12);
  // 0xff leads a negative base-256 number (whose value may even round to -0).
  let valid = block[124] !== 0xff && Number.isSafeInteger(size) && size >= 0;
  if (valid && !(block[124] & 0x80)) {
    let i = 124;
    while (i < 136 && block[i] === 0x20) i++;
    while (i < 136 && block[i] >= 0x30 && block[i] <= 0x37) i++;
    while (i < 136 && (block[i] === 0 || block[i] === 0x20)) i++;
    valid = i === 136;
  }
  if (!valid) throw new KrError('corrupt', `tar entry ${JSON.stringify(path)}: invalid size field`);
  return size;
}

function parseString(block: Buffer, offset: number, length: number): string {
  const nul = block.indexOf(0, offset);
  const end = nul === -1 || nul > offset + length ? offset + length : nul;
  return block.toString('latin1', offset, end);
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < 512; i++) if (block[i] !== 0) return false;
  return true;
}

function checksumOk(block: Buffer): boolean {
  const stored = parseNumber(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

const TYPES: Record<string, TarType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink',
  '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};

/** Decodes one 512-byte header block (before PAX/GNU overrides are applied). */
export function decodeBlock(block: Buffer): RawBlock {
  if (!checksumOk(block)) throw new KrError('corrupt', 'tar header checksum mismatch (not a tar, or damaged)');
  const typeflag = String.fromCharCode(block[156]);
  let path = parseString(block, 0, 100);
  const magic = block.toString('latin1', 257, 263);
  if (magic === 'ustar\0' && block[345] !== 0) path = parseString(block, 345, 155) + '/' + path;
  let type = TYPES[typeflag] ?? 'file';
  // Pre-POSIX tars mark directories only by a trailing slash.
  if (type === 'file' && typeflag !== '7' && path.endsWith('/')) type = 'dir';
  return {
    typeflag,
    header: {
      path,
      type,
      mode: parseNumber(block, 100, 8) & 0o7777,
      uid: parseNumber(block, 108, 8),
      gid: parseNumber(block, 116, 8),
      size: parseSize(block, path),
      mtime: parseNumber(block, 136, 12),
      linkname: parseString(block, 157, 100),
      uname: parseString(block, 265, 32),
      gname: parseString(block, 297, 32),
      devmajor: parseNumber(block, 329, 8),
      devminor: parseNumber(block, 337, 8),
      xattrs: null,
    },
  };
}

/** PAX records `"<len> <key>=<value>\n"`; values stay raw bytes. */
export function decodePaxRecords(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.toString('latin1', pos, space), 10);
    if (!(len > 0) || pos + len > data.length) throw new KrError('corrupt', 'tar PAX record length is invalid');
    const eq = data.indexOf(0x3d, space + 1);
    if (eq === -1 || eq >= pos + len) throw new KrError('corrupt', 'tar PAX record has no "="');
    records.set(data.toString('latin1', space + 1, eq), data.subarray(eq + 1, pos + len - 1));
    pos += len;
  }
  return records;
}

/** Applies PAX records (global first, then the entry's own) onto a decoded header. */
export function applyPax(header: TarHeader, records: Map<string, Buffer>): void {
  for (const [key, value] of records) {
    const text = value.toString('latin1');
    switch (key) {
      case 'path': header.path = text; break;
      case 'linkpath': header.linkname = text; break;
      case 'size': header.size = parseInt(text, 10); break;
      case 'uid': header.uid = parseInt(text, 10); break;
      case 'gid': header.gid = parseInt(text, 10); break;
      case 'uname': header.uname = text; break;
      case 'gname': header.gname = text; break;
      case 'mtime': header.mtime = Math.floor(parseFloat(text)); break;
      default:
        if (key.startsWith('SCHILY.xattr.')) {
          (header.xattrs ??= new Map()).set(key.slice('SCHILY.xattr.'.length), Buffer.from(value));
        } else if (key.startsWith('LIBARCHIVE.xattr.')) {
          // libarchive url-encodes the name and base64-encodes the value.
          const name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
          (header.xattrs ??= new Map()).set(name, Buffer.from(text, 'base64'));
        }
    }
  }
  if (!Number.isSafeInteger(header.size) || header.size < 0) throw new KrError('corrupt', `tar entry ${header.path}: invalid size`);
}
