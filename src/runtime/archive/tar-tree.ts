// A tar of one path of a host tree (a file, a symlink, or a directory with all it holds), written
// with the image pipeline's tar writer. Nothing is followed: symlinks are stored as links, files
// are opened O_NOFOLLOW|O_NONBLOCK and checked with fstat to still be regular files (so a swap
// for a symlink or a fifo between the walk and the read is refused instead of read through).
// Files that change size while being read are cut or zero-padded to the size in their header,
// so the archive stays well formed.
import { constants } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import type { TarHeader, TarType } from '../../image/tar/tar-header.ts';
import { encodeHeader, END_OF_ARCHIVE, padding } from '../../image/tar/tar-writer.ts';

const READ_FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const CHUNK = 256 << 10;

export interface TarTreeOptions {
  /** Directories whose contents are left out (their own entry is kept): /proc and /sys, say. */
  skipContents?: (inside: string) => boolean;
}

export function typeOf(st: Stats): TarType | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return null; // sockets have no tar form (docker skips them too)
}

/** The archive's name bytes as the tar writer wants them: a "binary" (latin1) string. */
const binary = (name: string): string => Buffer.from(name, 'utf8').toString('latin1');

export function headerOf(name: string, st: Stats, type: TarType, linkname = ''): TarHeader {
  return {
    path: binary(name),
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    uname: '',
    gname: '',
    mtime: Math.floor(st.mtimeMs / 1000),
    size: type === 'file' ? st.size : 0,
    linkname: binary(linkname),
    devmajor: (st.rdev >>> 8) & 0xfff,
    devminor: (st.rdev & 0xff) | ((st.rdev >>> 12) & 0xfff00),
    xattrs: null,
  };
}

/**
 * Yields the tar of `host` (already resolved by the caller, last component not followed) with
 * `name` as the first entry's name ("dir", ".", "file"); `inside` is the same path as the
 * container sees it, for skipContents.
 */
export async function* tarTree(host: string, name: string, inside: string, opts: TarTreeOptions = {}): AsyncGenerator<Buffer> {
  const links = new Map<string, string>();
  yield* entry(host, name, inside, opts, links);
  yield END_OF_ARCHIVE;
}

async function* entry(host: string, name: string, inside: string, opts: TarTreeOptions, links: Map<string, string>): AsyncGenerator<Buffer> {
  const st = await lstat(host).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null; // gone while we walked: left out, as tar does
    throw err;
  });
  if (!st) return;
  const type = typeOf(st);
  if (!type) return;
  if (type === 'symlink') {
    yield encodeHeader(headerOf(name, st, 'symlink', await readlink(host)));
    return;
  }
  if (type === 'dir') {
    yield encodeHeader(headerOf(name.endsWith('/') ? name : `${name}/`, st, 'dir'));
    if (opts.skipContents?.(inside)) return;
    const children = (await readdir(host).catch(() => [] as string[])).sort();
    for (const child of children) {
      yield* entry(join(host, child), `${name.replace(/\/$/, '')}/${child}`, inside === '/' ? `/${child}` : `${inside}/${child}`, opts, links);
    }
    return;
  }
  if (type === 'file' && st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) {
      yield encodeHeader(headerOf(name, st, 'link', first));
      return;
    }
    links.set(key, name);
  }
  if (type !== 'file') {
    yield encodeHeader(headerOf(name, st, type));
    return;
  }
  yield* fileEntry(host, name, st);
}

export async function* fileEntry(host: string, name: string, st: Stats): AsyncGenerator<Buffer> {
  const fh = await open(host, READ_FILE).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ELOOP') return null; // replaced under us: left out
    throw err;
  });
  if (!fh) return;
  try {
    const now = await fh.stat();
    if (!now.isFile()) return;
    yield encodeHeader(headerOf(name, st, 'file'));
    let left = st.size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, left));
      const { bytesRead } = await fh.read(buf, 0, buf.length, st.size - left);
      if (bytesRead === 0) break;
      left -= bytesRead;
      yield buf.subarray(0, bytesRead);
    }
    if (left > 0) yield Buffer.alloc(left); // the file shrank: zeros keep the header's size true
    yield padding(st.size);
  } finally {
    await fh.close();
  }
}
