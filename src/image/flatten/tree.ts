// The root filesystem being built, as an in-memory tree of metadata. File contents live in the
// spool; a node holds only their offset. Hardlinked paths share one Inode object, so whichever
// path is written out first carries the content and the others become links to it.
import { KrError } from '../../util/errors.ts';
import type { TarHeader, TarType } from '../tar/tar-header.ts';

export interface Inode {
  type: Exclude<TarType, 'link'>;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  xattrs: Map<string, Buffer> | null;
  size: number;
  /** Where the content starts in the spool (regular files). */
  spoolOffset: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Set while writing out: the path that carried this inode's content. */
  emittedAs: string | null;
}

export interface Node {
  inode: Inode;
  children: Map<string, Node> | null; // directories only
  /** Layer that created or last redefined this path. */
  layer: number;
  /** Last layer that put something underneath (a directory walked through). */
  touched: number;
}

const MAX_SYMLINK_HOPS = 40;

export function inodeOf(h: TarHeader, spoolOffset: number): Inode {
  return {
    type: h.type === 'link' ? 'file' : h.type,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    uname: h.uname,
    gname: h.gname,
    mtime: h.mtime,
    xattrs: h.xattrs,
    size: h.type === 'file' ? h.size : 0,
    spoolOffset,
    linkname: h.type === 'symlink' ? h.linkname : '',
    devmajor: h.devmajor,
    devminor: h.devminor,
    emittedAs: null,
  };
}

/** Path components of an archive path; null when it climbs out (".."). Leading "/" is dropped:
 *  a layer's absolute path means the same path inside the rootfs. */
export function components(path: string): string[] | null {
  const out: string[] = [];
  for (const c of path.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') return null;
    out.push(c);
  }
  return out;
}

export class RootTree {
  readonly root: Node;
  /** True once a layer carried an entry for the root directory itself ("./"). */
  rootExplicit = false;

  constructor() {
    this.root = newDir(implicitDirInode(), 0);
  }

  /**
   * The directory that contains `parts`' last component, following symlinks (confined to the
   * root, like securejoin). Missing directories are created when `create`, else null.
   */
  parentOf(parts: string[], layer: number, create: boolean): Node | null {
    return this.walk(parts.slice(0, -1), layer, create, 0);
  }

  private walk(parts: string[], layer: number, create: boolean, hops: number): Node | null {
    const stack: Node[] = [this.root];
    let pending = parts.slice();
    while (pending.length > 0) {
      const name = pending.shift()!;
      const dir = stack[stack.length - 1];
      if (name === '.' || name === '') continue;
      if (name === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      if (create) dir.touched = layer;
      let child = dir.children!.get(name);
      if (child && child.inode.type === 'symlink') {
        if (++hops > MAX_SYMLINK_HOPS) throw new KrError('corrupt', `too many symlinks resolving ${parts.join('/')}`);
        const target = child.inode.linkname;
        if (target.startsWith('/')) stack.length = 1;
        pending = [...target.split('/'), ...pending];
        continue;
      }
      if (!child) {
        if (!create) return null;
        child = newDir(implicitDirInode(), layer);
        dir.children!.set(name, child);
      }
      if (child.children === null) {
        if (!create) return null;
        throw new KrError('corrupt', `${parts.join('/')}: ${name} is not a directory`);
      }
      stack.push(child);
    }
    const last = stack[stack.length - 1];
    if (create) last.touched = layer;
    return last;
  }

  /** The node at `parts` without following a symlink in the last component. */
  lookup(parts: string[]): Node | null {
    if (parts.length === 0) return this.root;
    const parent = this.walk(parts.slice(0, -1), 0, false, 0);
    return parent?.children!.get(parts[parts.length - 1]) ?? null;
  }
}

export function newDir(inode: Inode, layer: number): Node {
  return { inode, children: new Map(), layer, touched: layer };
}

export function implicitDirInode(): Inode {
  return {
    type: 'dir', mode: 0o755, uid: 0, gid: 0, uname: '', gname: '', mtime: 0, xattrs: null,
    size: 0, spoolOffset: 0, linkname: '', devmajor: 0, devminor: 0, emittedAs: null,
  };
}

/** Removes everything under `dir` that came from layers below `layer` (opaque directories). */
export function pruneLower(dir: Node, layer: number): void {
  for (const [name, child] of dir.children!) {
    if (child.layer < layer && child.touched < layer) dir.children!.delete(name);
    else if (child.children !== null) pruneLower(child, layer);
  }
}
