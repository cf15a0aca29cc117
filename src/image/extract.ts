// Extracting an uncompressed tar into a directory, safe against hostile archives: nothing is ever
// written outside the root, whatever the names, links and ordering of the entries.
//
// Policy (see also extract/entry-path.ts and extract/safe-tree.ts):
// - Names: a leading "/" is dropped (the entry lands inside the root); ".." that would climb above
//   the root, NUL bytes, over-long names, and a non-directory named like the root are hostile.
// - No write goes through a symlink: a symlink (or a non-directory) as a parent component is hostile;
//   the last component is always created without following (O_EXCL|O_NOFOLLOW, mkdir, symlink, link).
// - Symlink targets are stored as they are (they are resolved later, inside the container).
// - Hardlinks must name a regular file this run already extracted, reached through real directories.
// - Later entries replace earlier ones of the same path; a directory only replaces a non-directory
//   (an existing directory is kept and gets the new metadata); a non-directory replaces anything,
//   a non-empty directory included (as docker does for layers).
// - Devices are created only with allowDevices (otherwise skipped and counted); fifos always are.
// - Xattrs (PAX SCHILY.xattr.*) are best effort: refused ones are counted, never an error;
//   trusted.overlay.* are never applied.
// - Hostile entries abort with KrError 'corrupt' naming the entry (onHostile 'refuse', the default)
//   or are skipped and counted ('skip'). Limits (maxEntries, maxBytes) always abort.
import { closeSync, constants, mkdirSync, openSync, symlinkSync } from 'node:fs';
import { link, lstat, mkdir, realpath, symlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { KrError, withContext } from '../util/errors.ts';
import type { TarHeader } from './tar/tar-header.ts';
import { readTarStream, type TarStreamEntry } from './tar/tar-reader.ts';
import { tarChunks } from './extract/chunks.ts';
import { normalizeEntryPath, printableName } from './extract/entry-path.ts';
import { extractFile, type FileTarget } from './extract/files.ts';
import { applyByFdSync, applyToNode, applyToSymlinkSync, type MetaPolicy } from './extract/metadata.ts';
import { makeNode } from './extract/native-ops.ts';
import { TaskPool } from './extract/pool.ts';
import { SafeTree, Unsafe } from './extract/safe-tree.ts';

export interface ExtractOptions {
  /** What to do with a hostile entry: abort (default) or skip it and count it. */
  onHostile?: 'refuse' | 'skip';
  /** Create char/block device nodes (default false: they are skipped and counted). */
  allowDevices?: boolean;
  /** Give files the archive's numeric uid/gid (default: when running as root). */
  sameOwner?: boolean;
  /** Most file data in total, in bytes (default 64 GiB). */
  maxBytes?: number;
  /** Most entries (default 4 million). */
  maxEntries?: number;
  /** Longest member name in bytes (default 4096, PATH_MAX). */
  maxPathLength?: number;
  /**
   * Refuse to replace an existing directory with a non-directory or the other way round (docker
   * cp's noOverwriteDirNonDir); by default a later entry replaces what is there.
   */
  noOverwriteDirNonDir?: boolean;
  /** With sameOwner: give every entry this owner instead of the archive's (docker cp -a to a USER). */
  owner?: { uid: number; gid: number };
  /**
   * The root path is used as given, not realpath()'d: for a root reached through a magic link
   * such as /proc/PID/root/…, which realpath would turn into a path of the host. The caller
   * vouches that the path names the directory it means (its own components resolved in scope).
   */
  rootAsGiven?: boolean;
}

export interface ExtractResult {
  /** Entries written (files, dirs, links, nodes; the root's own "./" entry included). */
  entries: number;
  /** File data bytes written. */
  bytes: number;
  /** Hostile entries skipped (onHostile 'skip'). */
  hostileSkipped: number;
  /** Device entries skipped because allowDevices is off. */
  devicesSkipped: number;
  /** Extended attributes not applied. */
  xattrsSkipped: number;
}

const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to chown

export async function extractTar(tar: Readable | AsyncIterable<Buffer | Uint8Array>, root: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const rootPath = opts.rootAsGiven ? root : await realpath(root).catch((err: unknown) => {
    throw withContext(err, 'extract');
  });
  if (!(await lstat(rootPath)).isDirectory()) throw new KrError('invalid', `extract: ${root} is not a directory`);
  const run = new Extraction(rootPath, opts);
  try {
    await run.all(tarChunks(tar));
  } catch (err) {
    await run.pool.settle();
    throw err;
  }
  return run.result;
}

class Extraction {
  readonly result: ExtractResult = { entries: 0, bytes: 0, hostileSkipped: 0, devicesSkipped: 0, xattrsSkipped: 0 };
  readonly pool = new TaskPool(64);
  private readonly tree: SafeTree;
  private readonly opts: Required<Omit<ExtractOptions, 'owner'>>;
  private readonly meta: MetaPolicy;
  private readonly files: FileTarget;
  /** Directory metadata, applied at the end so that creating their contents does not undo it. */
  private readonly pendingDirs = new Map<string, TarHeader>();
  private seen = 0;
  private declaredBytes = 0;

  constructor(root: string, opts: ExtractOptions) {
    this.opts = {
      onHostile: opts.onHostile ?? 'refuse',
      allowDevices: opts.allowDevices ?? false,
      sameOwner: opts.sameOwner ?? process.getuid?.() === 0,
      maxBytes: opts.maxBytes ?? 64 * 2 ** 30,
      maxEntries: opts.maxEntries ?? 4_000_000,
      maxPathLength: opts.maxPathLength ?? 4096,
      noOverwriteDirNonDir: opts.noOverwriteDirNonDir ?? false,
      rootAsGiven: opts.rootAsGiven ?? false,
    };
    this.meta = { sameOwner: this.opts.sameOwner, owner: opts.owner, xattrSkipped: (n) => (this.result.xattrsSkipped += n) };
    const keepKinds = this.opts.noOverwriteDirNonDir;
    this.tree = new SafeTree(root);
    this.tree.beforeRemove = () => this.pool.drain();
    this.files = { tree: this.tree, pool: this.pool, meta: this.meta };
    // what is being replaced was lstat()ed by the tree: a directory may only give way to a directory
    if (keepKinds) {
      this.tree.beforeReplace = (rel, wasDir, incomingDir) => {
        if (wasDir !== incomingDir) {
          const what = (d: boolean) => (d ? 'directory' : 'non-directory');
          throw new KrError('invalid', `cannot overwrite ${what(wasDir)} ${JSON.stringify('/' + rel)} with ${what(incomingDir)}`);
        }
      };
    }
    this.tree.onForget = (rel, wasDir) => {
      this.pendingDirs.delete(rel);
      if (!wasDir) return;
      const prefix = rel === '' ? '' : rel + '/';
      for (const key of this.pendingDirs.keys()) if (key.startsWith(prefix)) this.pendingDirs.delete(key);
    };
  }

  async all(tar: AsyncIterable<Buffer | Uint8Array>): Promise<void> {
    let current = '(start of archive)';
    let inData = false;
    try {
      for await (const entry of readTarStream(tar)) {
        current = entry.header.path;
        inData = true;
        await this.one(entry);
        inData = false;
      }
      await this.pool.drain();
      await this.finishDirs();
    } catch (err) {
      throw describe(err, current, inData);
    }
  }

  private async one(entry: TarStreamEntry): Promise<void> {
    const h = entry.header;
    if (++this.seen > this.opts.maxEntries) throw new KrError('corrupt', `tar has more than ${this.opts.maxEntries} entries (the limit)`);
    if (h.type === 'file') {
      this.declaredBytes += h.size;
      if (this.declaredBytes > this.opts.maxBytes) {
        throw new KrError('corrupt', `tar entry ${printableName(h.path)}: file data passes the ${this.opts.maxBytes}-byte limit`);
      }
    }
    try {
      const reason = this.checkHeader(h);
      if (reason) throw new Unsafe(reason);
      const name = normalizeEntryPath(h.path, this.opts.maxPathLength);
      if (!name.ok) throw new Unsafe(name.reason);
      if (name.rel === '' && h.type !== 'dir') throw new Unsafe('a non-directory named like the root');
      if (await this.write(entry, name.rel, name.parts)) this.result.entries++;
    } catch (err) {
      if (!(err instanceof Unsafe)) throw err;
      if (this.opts.onHostile === 'refuse') throw new KrError('corrupt', `tar entry ${printableName(h.path)}: ${err.message}`);
      this.result.hostileSkipped++;
    }
  }

  private checkHeader(h: TarHeader): string | null {
    const idOk = (id: number) => Number.isSafeInteger(id) && id >= 0 && id <= MAX_ID;
    if (!idOk(h.uid) || !idOk(h.gid)) return `invalid owner ${h.uid}:${h.gid}`;
    if (!Number.isFinite(h.mtime)) h.mtime = 0;
    return null;
  }

  /** Writes one entry; false when it was deliberately not written (a skipped device). */
  private async write(entry: TarStreamEntry, rel: string, parts: string[]): Promise<boolean> {
    const h = entry.header;
    switch (h.type) {
      case 'file':
        this.result.bytes += await extractFile(this.files, entry, rel, parts);
        return true;
      case 'dir': return this.dir(h, rel, parts);
      case 'symlink': return this.symlink(h, rel, parts);
      case 'link': return this.hardlink(h, rel, parts);
      case 'char':
      case 'block':
        if (!this.opts.allowDevices) {
          this.result.devicesSkipped++;
          return false;
        }
        return this.node(h, rel, parts);
      case 'fifo': return this.node(h, rel, parts);
    }
  }

  private async dir(h: TarHeader, rel: string, parts: string[]): Promise<boolean> {
    if (rel !== '' && this.tree.kind(rel) !== 'dir') {
      await this.tree.ensureParents(parts);
      const path = this.tree.abs(rel);
      // 0700 until the end: the archive's mode (0555, say) must not stop us filling it.
      // Synchronous, like small files: on tmpfs a round trip through libuv's pool costs more
      // than the mkdir. The rare replacement goes the async way (it waits for pending work).
      if (!mkdirIfNew(path)) {
        const st = await lstat(path);
        if (!st.isDirectory()) {
          await this.tree.remove(rel, true);
          await mkdir(path, 0o700);
        }
      }
      this.tree.mark(rel, 'dir');
    }
    this.pendingDirs.set(rel, h);
    return true;
  }

  private async symlink(h: TarHeader, rel: string, parts: string[]): Promise<boolean> {
    if (h.linkname === '') throw new Unsafe('symlink with an empty target');
    if (h.linkname.includes('\0')) throw new Unsafe('symlink target contains a NUL byte');
    if (h.linkname.length > this.opts.maxPathLength) throw new Unsafe(`symlink target is over the ${this.opts.maxPathLength}-byte limit`);
    await this.tree.ensureParents(parts);
    const path = this.tree.abs(rel);
    const target = Buffer.from(h.linkname, 'latin1');
    if (!symlinkIfNew(target, path)) {
      await this.tree.remove(rel);
      await symlink(target, path);
    }
    this.tree.mark(rel, 'symlink');
    // By path, so done here and now: a later entry must not be able to swap a parent under it.
    applyToSymlinkSync(path, h, this.meta);
    return true;
  }

  private async hardlink(h: TarHeader, rel: string, parts: string[]): Promise<boolean> {
    const target = normalizeEntryPath(h.linkname, this.opts.maxPathLength);
    if (!target.ok) throw new Unsafe(`hardlink target: ${target.reason}`);
    if (target.rel === '') throw new Unsafe('hardlink to the root');
    if (target.rel === rel) return true; // a link to itself: nothing to change
    // The target's parents must be real directories too: a link "through" a symlink is a way out.
    await this.tree.ensureParents(target.parts, false).catch((err: unknown) => {
      throw err instanceof Unsafe ? new Unsafe(`hardlink target: ${err.message}`) : err;
    });
    const targetPath = this.tree.abs(target.rel);
    const st = this.tree.kind(target.rel) === 'file' ? await lstat(targetPath).catch(() => null) : null;
    if (!st?.isFile()) throw new Unsafe(`hardlink target ${printableName(h.linkname)} is not a file extracted earlier`);
    await this.tree.ensureParents(parts);
    const path = this.tree.abs(rel);
    await link(targetPath, path).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
      await this.tree.remove(rel);
      await link(targetPath, path);
    });
    this.tree.mark(rel, 'file');
    return true;
  }

  private async node(h: TarHeader, rel: string, parts: string[]): Promise<boolean> {
    await this.tree.ensureParents(parts);
    await this.tree.remove(rel);
    const path = this.tree.abs(rel);
    const kind = h.type as 'fifo' | 'char' | 'block';
    const failed = await makeNode(path, kind, h.devmajor, h.devminor, this.tree.root);
    if (failed) throw withContext(Object.assign(new Error(`cannot create ${kind}: ${failed}`), { code: failed }), 'extract');
    this.tree.mark(rel, 'other');
    await applyToNode(path, h, this.meta);
    return true;
  }

  /** Directory owners, modes, xattrs and mtimes, once nothing more is created inside them. */
  private async finishDirs(): Promise<void> {
    await this.pool.drain();
    // Synchronous: four calls per directory, each cheaper than a trip through libuv's pool.
    for (const [rel, h] of this.pendingDirs) {
      const fd = openSync(this.tree.abs(rel), OPEN_DIR);
      try {
        applyByFdSync(fd, h, this.meta);
      } finally {
        closeSync(fd);
      }
    }
  }
}

/** mkdir; false when something is already there (EEXIST). */
function mkdirIfNew(path: Buffer): boolean {
  try {
    mkdirSync(path, 0o700);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

/** symlink; false when something is already there (EEXIST). */
function symlinkIfNew(target: Buffer, path: Buffer): boolean {
  try {
    symlinkSync(target, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

/** One line for any failure: truncation said as such, the entry named, fs errors given a kind. */
function describe(err: unknown, entry: string, inData: boolean): KrError {
  const where = inData ? `entry ${printableName(entry)}` : `after entry ${printableName(entry)}`;
  if (err instanceof KrError) {
    if (err.message.includes('truncated')) return new KrError('corrupt', `truncated tar: ${where} is cut short`, { cause: err });
    if (err.message.startsWith('tar ')) return err;
    return new KrError(err.kind, `tar ${where}: ${err.message}`, { cause: err });
  }
  return withContext(err, `extracting tar ${where}`);
}
