// Mount points inside the new root. The image is untrusted: a path like /data may be a symlink
// to /etc or ../../x. Paths are resolved the way the service will see them after pivot_root —
// symlinks followed *inside* the root, never out of it — and the mount point is created there.
import fs from 'node:fs';
import path from 'node:path';
import { KrError } from '../../util/errors.ts';

/** Resolves `inside` (absolute, as the service sees it) to a host path under `root`. */
export function resolveInRoot(root: string, inside: string, maxLinks = 40): string {
  const parts = inside.split('/').filter((p) => p && p !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      resolved.pop(); // ".." at the root stays at the root, as in the kernel
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(candidate);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) {
      if (++links > maxLinks) throw new KrError('invalid', `too many symlinks resolving ${inside} in the image`);
      const target = fs.readlinkSync(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...target.split('/').filter((p) => p && p !== '.'));
      continue;
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}

/** Creates the mount point for a bind of `kind` (dir or file) at `inside`; returns its host path. */
export function makeMountPoint(root: string, inside: string, kind: 'dir' | 'file'): string {
  try {
    return makeMountPointUnchecked(root, inside, kind);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new KrError('invalid', `cannot create ${inside}: a parent of it is not a directory in the image`);
    throw err;
  }
}

function makeMountPointUnchecked(root: string, inside: string, kind: 'dir' | 'file'): string {
  const target = resolveInRoot(root, inside);
  const parent = path.dirname(target);
  // Parents are created one by one, each re-resolved, so no step can be a link out of the root.
  const rel = path.relative(root, parent);
  let at = root;
  for (const part of rel ? rel.split(path.sep) : []) {
    at = resolveInRoot(root, path.join('/', path.relative(root, at), part));
    if (!fs.existsSync(at)) fs.mkdirSync(at, { mode: 0o755 });
  }
  const st = fs.lstatSync(target, { throwIfNoEntry: false });
  if (!st) {
    if (kind === 'dir') fs.mkdirSync(target, { mode: 0o755 });
    else fs.writeFileSync(target, '', { mode: 0o644, flag: 'wx' });
  } else if (kind === 'dir' && !st.isDirectory()) {
    throw new KrError('invalid', `cannot mount a directory on ${inside}: not a directory in the image`);
  } else if (kind === 'file' && st.isDirectory()) {
    throw new KrError('invalid', `cannot mount a file on ${inside}: it is a directory in the image`);
  }
  return target;
}
