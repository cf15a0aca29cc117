// COPY and ADD, first half: from the instruction to the list of entries to write, with the
// docker semantics for sources and destinations:
//   - sources are cleaned paths inside the context (or the --from root); `..` out of it is refused;
//     wildcards match within path components; .dockerignore'd files do not exist;
//   - a directory source copies its *contents*; a file goes to DEST/name when DEST ends in "/",
//     is an existing directory or there are several sources, else to DEST itself;
//   - new files are owned by 0:0 unless --chown; modes come from the source unless --chmod;
//   - a source that is itself a symlink is followed; symlinks inside directories are copied.
// The plan also yields a digest of names, modes and contents: the step's cache input.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KrError } from '../util/errors.ts';
import { hashFileInto } from '../util/hash-file.ts';
import type { TarHeader } from '../image/tar/tar-header.ts';
import { pathPatternRegex, type ContextEntry } from './dockerfile/dockerignore.ts';
import type { CopyInstruction, Heredoc } from './dockerfile/types.ts';
import { resolveInRoot } from '../bali/run/mount-points.ts';

export interface PlannedEntry {
  /** Destination, absolute inside the image. */
  dest: string;
  /** Where it comes from, relative to its source root (the cache key uses this, not dest). */
  from: string;
  header: Omit<TarHeader, 'path'>;
  /** Host file to read the content from, or the content itself. */
  hostPath?: string;
  content?: Buffer;
}

export interface SourceRoot {
  /** Host directory the source paths are relative to. */
  dir: string;
  /** For the build context: the entries .dockerignore keeps (path → type). Null: everything. */
  included: Map<string, ContextEntry['type']> | null;
  /** For another stage or image: resolve symlinks inside it (it is a root filesystem). */
  isRootfs: boolean;
}

export interface CopyContext {
  source: SourceRoot;
  /** The image's root, to know whether DEST is an existing directory (null: only planning the cache key). */
  imageRoot: string | null;
  workdir: string;
  owner?: { uid: number; gid: number };
}

const hasGlob = (p: string) => /[*?[]/.test(p);

function cleanSource(p: string, kind: string): string {
  const norm = path.posix.normalize('/' + p).slice(1);
  if (path.posix.normalize(p).startsWith('../') || path.posix.normalize(p) === '..') {
    throw new KrError('invalid', `${kind} failed: forbidden path outside the build context: ${p}`);
  }
  return norm.replace(/\/$/, '');
}

function listDir(src: SourceRoot, rel: string): { path: string; type: ContextEntry['type'] }[] {
  if (src.included) {
    const prefix = rel === '' ? '' : rel + '/';
    return [...src.included].filter(([p]) => p.startsWith(prefix) && p !== rel).map(([p, type]) => ({ path: p, type }));
  }
  const out: { path: string; type: ContextEntry['type'] }[] = [];
  const walk = (r: string) => {
    for (const e of fs.readdirSync(path.join(src.dir, r), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = r ? `${r}/${e.name}` : e.name;
      const type = e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'symlink' : e.isFile() ? 'file' : 'other';
      out.push({ path: p, type });
      if (type === 'dir') walk(p);
    }
  };
  walk(rel);
  return out;
}

/** The host path of a source inside its root, and whether it exists there (as the build sees it). */
function locate(src: SourceRoot, rel: string): string | null {
  if (src.included && rel !== '' && !src.included.has(rel)) return null;
  const host = src.isRootfs ? resolveInRoot(src.dir, '/' + rel) : path.join(src.dir, rel);
  return fs.existsSync(host) ? host : null;
}

function matchSources(src: SourceRoot, pattern: string, kind: string): string[] {
  if (!hasGlob(pattern)) {
    if (locate(src, pattern) === null) throw new KrError('not-found', `${kind} failed: ${pattern || '.'}: not found in the build context (or excluded by .dockerignore)`);
    return [pattern];
  }
  const re = pathPatternRegex(pattern);
  const depth = pattern.split('/').length;
  const all = src.included ? [...src.included.keys()] : listDir(src, '').map((e) => e.path);
  const found = all.filter((p) => p.split('/').length === depth && re.test(p));
  if (found.length === 0) throw new KrError('not-found', `${kind} failed: no source files were specified (nothing matches ${pattern})`);
  return found;
}

function headerOf(st: fs.Stats, ctx: CopyContext, chmod: number | undefined, linkname = ''): Omit<TarHeader, 'path'> {
  const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
  return {
    type,
    mode: chmod !== undefined && type !== 'symlink' ? chmod : st.mode & 0o7777,
    uid: ctx.owner?.uid ?? 0,
    gid: ctx.owner?.gid ?? 0,
    uname: '',
    gname: '',
    mtime: Math.floor(st.mtimeMs / 1000),
    size: type === 'file' ? st.size : 0,
    linkname,
    devmajor: 0,
    devminor: 0,
    xattrs: null,
  };
}

export function fileHeader(size: number, mode: number, owner: { uid: number; gid: number } | undefined, mtime: number, type: 'file' | 'dir' = 'file'): Omit<TarHeader, 'path'> {
  return { type, mode, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, uname: '', gname: '', mtime, size, linkname: '', devmajor: 0, devminor: 0, xattrs: null };
}

function isDirInImage(imageRoot: string | null, inside: string): boolean {
  if (imageRoot === null) return false;
  try {
    return fs.statSync(resolveInRoot(imageRoot, inside)).isDirectory();
  } catch {
    return false;
  }
}

export function planCopy(inst: CopyInstruction, ctx: CopyContext): PlannedEntry[] {
  const kind = inst.kind;
  let dest = inst.dest;
  if (!dest.startsWith('/')) dest = path.posix.join(ctx.workdir || '/', dest) + (dest.endsWith('/') ? '/' : '');
  const chmod = inst.flags.chmod !== undefined ? parseInt(inst.flags.chmod, 8) : undefined;
  if (chmod !== undefined && (!Number.isInteger(chmod) || chmod < 0 || chmod > 0o7777)) throw new KrError('invalid', `${kind}: bad --chmod ${inst.flags.chmod}`);
  const paths = inst.sources.filter((s): s is { path: string } => 'path' in s).map((s) => cleanSource(s.path, kind));
  const matched = paths.flatMap((p) => matchSources(ctx.source, p, kind));
  const heredocs = inst.sources.filter((s): s is { heredoc: Heredoc } => 'heredoc' in s).map((s) => s.heredoc);
  const many = matched.length + heredocs.length > 1;
  const destIsDir = dest.endsWith('/') || many || isDirInImage(ctx.imageRoot, dest);
  if (many && !dest.endsWith('/') && !isDirInImage(ctx.imageRoot, dest)) {
    throw new KrError('invalid', `${kind} with more than one source needs a destination directory ending in /: ${inst.dest}`);
  }
  const destDir = dest.replace(/\/+$/, '') || '/';
  const entries: PlannedEntry[] = [];
  for (const rel of matched) {
    const host = locate(ctx.source, rel)!;
    const st = fs.statSync(host); // follows a symlink source, as docker does
    if (st.isDirectory()) {
      // A destination directory that does not exist yet takes the source directory's metadata.
      if (ctx.imageRoot === null || !fs.existsSync(resolveInRoot(ctx.imageRoot, destDir))) {
        if (destDir !== '/') entries.push({ dest: destDir, from: rel || '.', header: headerOf(st, ctx, chmod) });
      }
      for (const e of listDir(ctx.source, rel)) {
        const p = path.join(ctx.source.dir, e.path);
        const lst = fs.lstatSync(p);
        const name = path.posix.join(destDir, e.path.slice(rel === '' ? 0 : rel.length + 1));
        if (e.type === 'symlink') entries.push({ dest: name, from: e.path, header: headerOf(lst, ctx, chmod, fs.readlinkSync(p)) });
        else if (e.type === 'dir' || e.type === 'file') entries.push({ dest: name, from: e.path, header: headerOf(lst, ctx, chmod), hostPath: e.type === 'file' ? p : undefined });
      }
    } else {
      const name = destIsDir ? path.posix.join(destDir, path.posix.basename(rel)) : destDir;
      entries.push({ dest: name, from: rel, header: headerOf(st, ctx, chmod), hostPath: host });
    }
  }
  for (const h of heredocs) {
    const content = Buffer.from(h.content, 'utf8');
    const name = destIsDir ? path.posix.join(destDir, h.name) : destDir;
    entries.push({ dest: name, from: `<<${h.name}`, header: fileHeader(content.length, chmod ?? 0o644, ctx.owner, 0), content });
  }
  return entries;
}

/** What decides whether the step's layer can be reused: names, metadata and contents (not mtimes). */
export function digestOf(entries: PlannedEntry[]): string {
  const h = createHash('sha256');
  for (const e of entries) {
    const { mtime: _m, ...meta } = e.header;
    h.update(JSON.stringify([e.from, meta]));
    if (e.content) h.update(e.content);
    else if (e.hostPath && e.header.type === 'file') hashFileInto(h, e.hostPath);
  }
  return h.digest('hex');
}
