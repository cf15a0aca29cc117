// The extraction root as the extractor knows it: which paths inside it it has made or checked, so
// that no write ever goes through a symlink. Node has no openat(), so the discipline is: every parent
// component of a path we write is either a directory this run made or checked with lstat (and it
// never changed since: all changes under the root are ours, and replacing a path forgets everything
// below it), and the last component is created with calls that never follow a symlink there
// (open O_CREAT|O_EXCL|O_NOFOLLOW, mkdir, symlink, link, mknod all fail with EEXIST instead).
import { lstatSync, rmSync, unlinkSync } from 'node:fs';
import { lstat, mkdir, rm, unlink } from 'node:fs/promises';

export type Known = 'dir' | 'file' | 'symlink' | 'other';

/** A refusal from the tree: the caller turns it into a hostile-entry verdict. */
export class Unsafe extends Error {}

export class SafeTree {
  readonly root: string;
  private readonly rootBytes: Buffer;
  /** rel path (latin1) → what is there, for paths this run created or lstat-checked. */
  private readonly known = new Map<string, Known>([['', 'dir']]);
  /** Called with a rel path when it (and, for a directory, everything below it) is removed. */
  onForget: (rel: string, wasDir: boolean) => void = () => {};
  /**
   * Awaited before anything is removed: background work that still names paths must finish
   * before a path can change from a directory into something else (a symlink, say).
   */
  beforeRemove: () => Promise<void> = async () => {};
  /** Called when something is about to be replaced; throws to refuse (kinds must match, say). */
  beforeReplace: (rel: string, wasDir: boolean, incomingDir: boolean) => void = () => {};

  constructor(root: string) {
    this.root = root;
    this.rootBytes = Buffer.from(root.endsWith('/') ? root : root + '/');
  }

  /** Absolute path as bytes, so names that are not UTF-8 survive. */
  abs(rel: string): Buffer {
    return rel === '' ? Buffer.from(this.root) : Buffer.concat([this.rootBytes, Buffer.from(rel, 'latin1')]);
  }

  kind(rel: string): Known | undefined {
    return this.known.get(rel);
  }

  mark(rel: string, kind: Known): void {
    this.known.set(rel, kind);
  }

  /**
   * Makes sure every parent of `parts` is a real directory, creating missing ones (0755, as tar
   * does for directories the archive implies). Throws Unsafe on a symlink or non-directory.
   */
  async ensureParents(parts: string[], create = true): Promise<void> {
    let rel = '';
    for (let i = 0; i < parts.length - 1; i++) {
      rel = i === 0 ? parts[0] : rel + '/' + parts[i];
      const kind = this.known.get(rel);
      if (kind === 'dir') continue;
      if (kind === 'symlink') throw new Unsafe(`parent ${JSON.stringify(rel)} is a symlink`);
      if (kind !== undefined) throw new Unsafe(`parent ${JSON.stringify(rel)} is not a directory`);
      const st = await lstat(this.abs(rel)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      if (st === null) {
        if (!create) throw new Unsafe(`${JSON.stringify(rel)} does not exist`);
        await mkdir(this.abs(rel), 0o755);
      } else if (st.isSymbolicLink()) {
        throw new Unsafe(`parent ${JSON.stringify(rel)} is a symlink`);
      } else if (!st.isDirectory()) {
        throw new Unsafe(`parent ${JSON.stringify(rel)} is not a directory`);
      }
      this.known.set(rel, 'dir');
    }
  }

  /** Removes whatever is at `rel` (a directory with all it holds), without following symlinks. */
  async remove(rel: string, incomingDir = false): Promise<void> {
    await this.beforeRemove();
    const path = this.abs(rel);
    const st = await lstat(path).catch(() => null);
    if (st !== null) this.beforeReplace(rel, st.isDirectory(), incomingDir);
    if (st === null) {
      // already gone
    } else if (st.isDirectory()) {
      // fs.rm lstat()s what it walks: symlinks inside are unlinked, never followed.
      await rm(path, { recursive: true, force: true });
    } else {
      await unlink(path);
    }
    this.forget(rel, st?.isDirectory() ?? false);
  }

  /**
   * remove(), synchronously, for the small-file path. Background tasks only touch paths of
   * symlinks and nodes, which are awaited inline, and fds; so there is nothing to wait for here.
   */
  removeSync(rel: string): void {
    const path = this.abs(rel);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      st = null;
    }
    if (st) this.beforeReplace(rel, st.isDirectory(), false);
    if (st?.isDirectory()) rmSync(path, { recursive: true, force: true });
    else if (st) unlinkSync(path);
    this.forget(rel, st?.isDirectory() ?? false);
  }

  private forget(rel: string, wasDir: boolean): void {
    this.known.delete(rel);
    if (wasDir) {
      const prefix = rel + '/';
      for (const key of this.known.keys()) if (key.startsWith(prefix)) this.known.delete(key);
    }
    this.onForget(rel, wasDir);
  }
}
