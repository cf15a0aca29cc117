// docker cp's semantics over a container filesystem reached at a host path (`root`): the
// X-Docker-Container-Path-Stat of a path, a tar of a path named as docker names it, and a tar
// extracted into a directory. A runtime that can show a container's filesystem at a host path
// (ns: /proc/PID/root) uses these as they are; one that cannot (a VM) runs the same rules in its
// guest.
//
// Paths are resolved as the container sees them: symlinks are followed *inside* `root` (an
// absolute link target starts again at the container's root, ".." stops there), never by the
// kernel, which would resolve an absolute target against the host's root. As in docker, the last
// element of a path is not followed for stat and GET (a symlink comes back as a symlink, unless
// the path ends in "/" or "/."), and is followed for PUT (extracting "into" a link to a directory).
// `root` ends in "/" when it is a magic link such as /proc/PID/root/, so that it is followed.
// Known limit, shared with docker before it moved archive work into a chroot: a process of the
// container that swaps a directory for a symlink between the resolution and the access can win
// the race for reads; writes cannot, since the extractor never writes through a symlink.
import { lstat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { resolveInRoot } from '../../bali/run/mount-points.ts';
import { extractTar } from '../../image/extract.ts';
import { KrError } from '../../util/errors.ts';
import type { PathStat, PutArchiveOptions } from '../runtime.ts';
import { tarTree } from './tar-tree.ts';

// Go's os.FileMode bits, which docker's PathStat carries (the CLI tests Mode.IsDir()).
const GO_DIR = 2 ** 31, GO_SYMLINK = 2 ** 27, GO_DEVICE = 2 ** 26, GO_PIPE = 2 ** 25, GO_SOCKET = 2 ** 24;
const GO_SETUID = 2 ** 23, GO_SETGID = 2 ** 22, GO_CHARDEV = 2 ** 21, GO_STICKY = 2 ** 20;

export function goFileMode(st: Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m += GO_DIR;
  else if (st.isSymbolicLink()) m += GO_SYMLINK;
  else if (st.isFIFO()) m += GO_PIPE;
  else if (st.isSocket()) m += GO_SOCKET;
  else if (st.isBlockDevice()) m += GO_DEVICE;
  else if (st.isCharacterDevice()) m += GO_DEVICE + GO_CHARDEV;
  if (st.mode & 0o4000) m += GO_SETUID;
  if (st.mode & 0o2000) m += GO_SETGID;
  if (st.mode & 0o1000) m += GO_STICKY;
  return m;
}

/** The path made absolute and clean, keeping a trailing "/" or "/." (they change what is meant). */
export function containerPath(path: string): string {
  if (path === '') throw new KrError('invalid', 'Path cannot be empty');
  if (path.includes('\0')) throw new KrError('invalid', 'Path contains a NUL byte');
  const clean = posix.resolve('/', path);
  const base = clean === '/' ? '' : clean;
  if (path === '.' || path.endsWith('/.')) return `${base}/.`;
  if (path.endsWith('/')) return `${base}/`;
  return clean;
}

/** Go's filepath.Base, which names the stat and the archive's first entry. */
function goBase(abs: string): string {
  const trimmed = abs.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

const notFound = (path: string, id: string) => new KrError('not-found', `Could not find the file ${path} in container ${id}`);

/** docker's ResolvePath: the directory part resolved in scope, the last element appended as it is. */
function resolveLastUnfollowed(root: string, abs: string): string {
  const cut = abs.lastIndexOf('/');
  const dir = resolveInRoot(root, abs.slice(0, cut + 1));
  const base = abs.slice(cut + 1);
  return base === '' || base === '.' ? dir : posix.join(dir, base);
}

async function lstatOrNull(host: string): Promise<Stats | null> {
  return lstat(host).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
    throw err;
  });
}

/** Where a symlink leads, as a path inside the container (docker's linkTarget). */
function linkTargetOf(root: string, abs: string): string {
  const full = resolveInRoot(root, abs);
  const rel = posix.relative(root, full);
  return `/${rel}`;
}

async function statResolved(root: string, abs: string, host: string, path: string, id: string): Promise<PathStat> {
  const st = await lstatOrNull(host);
  if (!st) throw notFound(path, id);
  return {
    name: goBase(abs),
    size: st.size,
    mode: goFileMode(st),
    mtime: st.mtime.toISOString(),
    linkTarget: st.isSymbolicLink() ? linkTargetOf(root, abs) : '',
  };
}

export async function statInRoot(root: string, path: string, id: string): Promise<PathStat> {
  const abs = containerPath(path);
  return statResolved(root, abs, resolveLastUnfollowed(root, abs), path, id);
}

/** Contents not worth a tar (and endless to read): the kernel's own file systems. */
const skipContents = (inside: string): boolean => inside === '/proc' || inside === '/sys';

/**
 * The tar docker's GET archive answers: "/dir" gives "dir/", "dir/…"; "/dir/." gives "./", "./…";
 * a file gives one entry with its base name; "/" is given as "./…".
 */
export async function archiveInRoot(root: string, path: string, id: string): Promise<{ stat: PathStat; tar: AsyncGenerator<Buffer> }> {
  const abs = containerPath(path);
  const host = resolveLastUnfollowed(root, abs);
  const stat = await statResolved(root, abs, host, path, id);
  const name = stat.name === '/' ? '.' : stat.name;
  const inside = posix.resolve('/', abs);
  return { stat, tar: tarTree(host, name, inside, { skipContents }) };
}

/** A gzip stream is unpacked first, as docker's PUT accepts one (its Unpack sniffs the format). */
async function* maybeGunzip(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length < 2) {
    const more = await it.next();
    first = more.done ? first : { done: false, value: Buffer.concat([first.value, more.value]) };
    if (more.done) break;
  }
  if (first.done) return;
  const rest = (async function* () {
    yield first.value;
    for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
  })();
  if (first.value[0] !== 0x1f || first.value[1] !== 0x8b) {
    yield* rest;
    return;
  }
  yield* Readable.from(rest).pipe(createGunzip()) as AsyncIterable<Buffer>;
}

/** docker's PUT archive: the tar extracted into the existing directory at `path` (link followed). */
export async function extractInRoot(root: string, path: string, id: string, tar: AsyncIterable<Buffer>, opts: PutArchiveOptions & { owner?: { uid: number; gid: number } }): Promise<void> {
  const abs = containerPath(path);
  const host = resolveInRoot(root, abs);
  const st = await lstatOrNull(host);
  if (!st) throw notFound(path, id);
  if (!st.isDirectory()) throw new KrError('invalid', 'extraction point is not a directory');
  try {
    // the hardened extractor: no ".." out, no write through a symlink, no devices
    await extractTar(maybeGunzip(tar), host, {
      rootAsGiven: true,
      sameOwner: true,
      owner: opts.owner,
      noOverwriteDirNonDir: opts.noOverwriteDirNonDir,
      onHostile: 'refuse',
    });
  } catch (err) {
    const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code ?? (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS') throw new KrError('invalid', `container ${id}: ${path} is on a read-only file system`);
    if (err instanceof KrError && (err.kind === 'corrupt' || err.kind === 'invalid')) throw new KrError('invalid', err.message);
    throw err;
  }
}
