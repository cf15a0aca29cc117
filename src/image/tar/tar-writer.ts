// Encoding tar headers: a ustar block, preceded by a PAX extended header when a value does not
// fit ustar (long names, big ids, xattrs). Our own rather than tar-stream's pack because PAX
// values must be written as raw bytes (binary xattrs) and pack cannot write a global header.
import type { TarHeader, TarType } from './tar-header.ts';

export const END_OF_ARCHIVE = Buffer.alloc(1024);
const ZEROS = Buffer.alloc(512);

export function padding(size: number): Buffer {
  const pad = (512 - (size % 512)) % 512;
  return ZEROS.subarray(0, pad);
}

const TYPEFLAG: Record<TarType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

/** One PAX record; the leading length counts the whole record, itself included. */
export function paxRecord(key: string, value: Buffer | string): Buffer {
  const val = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  const rest = 1 + Buffer.byteLength(key, 'latin1') + 1 + val.length + 1; // " key=value\n"
  let digits = String(rest).length;
  if (String(rest + digits).length > digits) digits++;
  const len = rest + digits;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'latin1'), val, Buffer.from('\n')]);
}

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  // width-1 octal digits then NUL, as GNU tar writes them.
  block.write(value.toString(8).padStart(width - 1, '0') + '\0', offset, width, 'latin1');
}

export interface BlockFields {
  name: string;
  typeflag: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: number;
  linkname?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  prefix?: string;
}

/** One 512-byte ustar header block; callers make sure every value fits. */
export function ustarBlock(f: BlockFields): Buffer {
  const b = Buffer.alloc(512);
  b.write(f.name, 0, 100, 'latin1');
  writeOctal(b, 100, 8, f.mode ?? 0o644);
  writeOctal(b, 108, 8, f.uid ?? 0);
  writeOctal(b, 116, 8, f.gid ?? 0);
  writeOctal(b, 124, 12, f.size ?? 0);
  writeOctal(b, 136, 12, f.mtime ?? 0);
  b.write(f.typeflag, 156, 1, 'latin1');
  if (f.linkname) b.write(f.linkname, 157, 100, 'latin1');
  b.write('ustar\x0000', 257, 8, 'latin1');
  if (f.uname) b.write(f.uname, 265, 32, 'latin1');
  if (f.gname) b.write(f.gname, 297, 32, 'latin1');
  writeOctal(b, 329, 8, f.devmajor ?? 0);
  writeOctal(b, 337, 8, f.devminor ?? 0);
  if (f.prefix) b.write(f.prefix, 345, 155, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i];
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

/** Splits a path into ustar prefix + name, or null when it cannot fit. */
function splitName(path: string): { prefix: string; name: string } | null {
  if (path.length <= 100) return { prefix: '', name: path };
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    if (i > 155) break;
    if (path.length - i - 1 <= 100 && path.length - i - 1 > 0) return { prefix: path.slice(0, i), name: path.slice(i + 1) };
  }
  return null;
}

const MAX8 = 0o7777777; // 7 octal digits in an 8-byte field
const MAX12 = 0o77777777777; // 11 octal digits in a 12-byte field

/** Header blocks for one entry (PAX block first if needed). Paths are binary strings. */
export function encodeHeader(h: TarHeader): Buffer {
  const path = h.type === 'dir' && !h.path.endsWith('/') ? h.path + '/' : h.path;
  const records: Buffer[] = [];
  let split = splitName(path);
  if (split === null) {
    records.push(paxRecord('path', path));
    split = { prefix: '', name: path.slice(0, 100) };
  }
  let linkname = h.linkname;
  if (linkname.length > 100) {
    records.push(paxRecord('linkpath', linkname));
    linkname = linkname.slice(0, 100);
  }
  const fits = (v: number, max: number) => Number.isInteger(v) && v >= 0 && v <= max;
  if (!fits(h.uid, MAX8)) records.push(paxRecord('uid', String(h.uid)));
  if (!fits(h.gid, MAX8)) records.push(paxRecord('gid', String(h.gid)));
  if (!fits(h.size, MAX12)) records.push(paxRecord('size', String(h.size)));
  if (!fits(h.mtime, MAX12)) records.push(paxRecord('mtime', String(h.mtime)));
  if (h.uname.length > 32) records.push(paxRecord('uname', h.uname));
  if (h.gname.length > 32) records.push(paxRecord('gname', h.gname));
  if (h.xattrs) {
    // Sorted so the same metadata always gives the same bytes.
    for (const name of [...h.xattrs.keys()].sort()) records.push(paxRecord(`SCHILY.xattr.${name}`, h.xattrs.get(name)!));
  }
  const clamp = (v: number, max: number) => (fits(v, max) ? v : 0);
  const main = ustarBlock({
    name: split.name,
    prefix: split.prefix,
    typeflag: TYPEFLAG[h.type],
    mode: h.mode & 0o7777,
    uid: clamp(h.uid, MAX8),
    gid: clamp(h.gid, MAX8),
    size: clamp(h.size, MAX12),
    mtime: clamp(h.mtime, MAX12),
    linkname,
    uname: h.uname.slice(0, 32),
    gname: h.gname.slice(0, 32),
    devmajor: clamp(h.devmajor, MAX8),
    devminor: clamp(h.devminor, MAX8),
  });
  if (records.length === 0) return main;
  const data = Buffer.concat(records);
  const paxName = ('PaxHeaders/' + split.name).slice(0, 100);
  return Buffer.concat([ustarBlock({ name: paxName, typeflag: 'x', size: data.length, mtime: clamp(h.mtime, MAX12) }), data, padding(data.length), main]);
}
