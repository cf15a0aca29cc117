// A container's own layer, read from its overlayfs upper dir against the image's flattened
// rootfs (the lower dir): docker diff's list of changes, and docker commit's layer tar.
// - A whiteout (a 0:0 character device) in upper is a deletion; an entry in upper is added (A)
//   or, when the lower has the path too, changed (C).
// - An opaque directory (removed and made again in the container) hides all of the lower's
//   entries. Node cannot read the xattr that marks it, so the lower's names are checked against
//   the merged view the container sees: a lower name missing there is a deletion.
// - Mount points the runtime made (binds, tmpfs, /proc, /sys, /dev) are not the container's
//   changes, and a directory that exists in the lower is only reported when something in it
//   is, or its owner or mode changed (making a mount point in /etc changes nothing for docker).
// Deletions go into the tar as docker's empty ".wh.<name>" files.
import type { Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import type { TarHeader } from '../../image/tar/tar-header.ts';
import { encodeHeader, END_OF_ARCHIVE } from '../../image/tar/tar-writer.ts';
import { fileEntry, headerOf, typeOf } from './tar-tree.ts';

export interface FsChange {
  /** Absolute, as the container sees it. */
  path: string;
  kind: 'A' | 'C' | 'D';
}

export interface UpperTree {
  upper: string;
  lower: string;
  /** The container's root as its processes see it (for opaque dirs); null: not checked. */
  merged: string | null;
  /** Paths the runtime mounted something on: left out with all under them. */
  mountPoints: string[];
}

interface Item extends FsChange {
  /** The upper entry (not for deletions). */
  st?: Stats;
  host?: string;
}

const ALWAYS_MOUNTED = ['/proc', '/sys', '/dev'];

const lstatOrNull = (p: string) => lstat(p).catch(() => null);
const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

/** Everything the container changed, parents before their children, each directory sorted. */
export async function scanUpper(t: UpperTree): Promise<Item[]> {
  const skip = new Set([...ALWAYS_MOUNTED, ...t.mountPoints].map((p) => posix.resolve('/', p)));
  const out: Item[] = [];
  await scanDir(t, '/', skip, out);
  // by path, as docker lists them (a parent still comes before what is in it)
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function scanDir(t: UpperTree, inside: string, skip: Set<string>, out: Item[]): Promise<void> {
  const names = (await readdir(join(t.upper, inside)).catch(() => [] as string[])).sort();
  for (const name of names) {
    const path = posix.join(inside, name);
    if (skip.has(path)) continue;
    const host = join(t.upper, path);
    const st = await lstatOrNull(host);
    if (!st) continue;
    if (isWhiteout(st)) {
      out.push({ path, kind: 'D' });
      continue;
    }
    const below = await lstatOrNull(join(t.lower, path));
    if (!st.isDirectory()) {
      if (typeOf(st)) out.push({ path, kind: below ? 'C' : 'A', st, host });
      continue;
    }
    const at = out.length;
    out.push({ path, kind: below ? 'C' : 'A', st, host });
    if (below?.isDirectory()) await hiddenByOpaque(t, path, out);
    await scanDir(t, path, skip, out);
    const changedItself = !below || !below.isDirectory() || below.uid !== st.uid || below.gid !== st.gid || (below.mode & 0o7777) !== (st.mode & 0o7777);
    if (!changedItself && out.length === at + 1) out.pop();
  }
}

/** Lower entries of dir that the merged view no longer shows and upper did not white out. */
async function hiddenByOpaque(t: UpperTree, dir: string, out: Item[]): Promise<void> {
  if (!t.merged) return;
  const lowerNames = await readdir(join(t.lower, dir)).catch(() => [] as string[]);
  if (lowerNames.length === 0) return;
  const upperNames = new Set(await readdir(join(t.upper, dir)).catch(() => [] as string[]));
  const mergedNames = await readdir(join(t.merged, dir)).catch(() => null);
  if (!mergedNames) return;
  const seen = new Set(mergedNames);
  for (const name of lowerNames.sort()) if (!seen.has(name) && !upperNames.has(name)) out.push({ path: posix.join(dir, name), kind: 'D' });
}

/** A deletion in a layer: an empty file named .wh.<name> beside where the entry was. */
function whiteout(path: string): TarHeader {
  const name = posix.join(posix.dirname(path), `.wh.${posix.basename(path)}`);
  return { path: Buffer.from(name, 'utf8').toString('latin1'), type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: 0, size: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: null };
}

/** The changes as a layer tar (relative names, as in an image layer). */
export function layerTar(items: Item[]): Readable {
  return Readable.from(
    (async function* () {
      for (const it of items) {
        const name = it.path.slice(1);
        if (it.kind === 'D') {
          yield encodeHeader(whiteout(name));
          continue;
        }
        const st = it.st!;
        const type = typeOf(st)!;
        if (type === 'file') yield* fileEntry(it.host!, name, st);
        else if (type === 'symlink') yield encodeHeader(headerOf(name, st, 'symlink', await readlink(it.host!)));
        else yield encodeHeader(headerOf(type === 'dir' ? `${name}/` : name, st, type));
      }
      yield END_OF_ARCHIVE;
    })(),
  );
}

const KINDS = ['C', 'A', 'D'] as const;

/** docker's wire form (GET /containers/{id}/changes): Kind 0 changed, 1 added, 2 deleted. */
export function changesJson(list: FsChange[]): { Path: string; Kind: number }[] {
  return list.map((c) => ({ Path: c.path, Kind: KINDS.indexOf(c.kind) }));
}

/** The wire form back, from an untrusted peer (a pod VM's vdocker): malformed entries are refused. */
export function changesFromJson(v: unknown): FsChange[] {
  if (!Array.isArray(v)) throw new Error('changes: not a list');
  return v.map((c: { Path?: unknown; Kind?: unknown }) => {
    if (typeof c?.Path !== 'string' || !c.Path.startsWith('/') || c.Path.length > 4096 || c.Path.includes('\0') || typeof c.Kind !== 'number' || !KINDS[c.Kind]) throw new Error('changes: a malformed entry');
    return { path: c.Path, kind: KINDS[c.Kind] };
  });
}
