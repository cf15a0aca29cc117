// A comparable snapshot of an extracted root filesystem: every path with its type, mode, owner,
// content hash, link target, device number, xattrs and hardlink group. Used to compare our
// flattened tar (extracted by GNU tar) against `umoci unpack`.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

export interface PathInfo {
  type: string;
  mode: string;
  owner: string;
  content?: string;
  target?: string;
  rdev?: string;
  mtime?: number;
}

export interface TreeSnapshot {
  paths: Map<string, PathInfo>;
  /** Paths sharing an inode (non-directories with more than one link), each group sorted. */
  hardlinkGroups: string[];
  /** path → xattr name → hex value */
  xattrs: Record<string, Record<string, string>>;
}

function typeOf(st: Stats): string {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

export function snapshot(root: string): TreeSnapshot {
  const paths = new Map<string, PathInfo>();
  const byInode = new Map<number, string[]>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const full = join(root, p);
      const st = lstatSync(full);
      const info: PathInfo = { type: typeOf(st), mode: (st.mode & 0o7777).toString(8), owner: `${st.uid}:${st.gid}` };
      if (info.type === 'file') info.content = createHash('sha256').update(readFileSync(full)).digest('hex');
      if (info.type === 'symlink') info.target = readlinkSync(full);
      if (info.type === 'char' || info.type === 'block') info.rdev = String(st.rdev);
      if (info.type !== 'dir') info.mtime = Math.floor(st.mtimeMs / 1000);
      paths.set(p, info);
      if (info.type !== 'dir' && st.nlink > 1) byInode.set(st.ino, [...(byInode.get(st.ino) ?? []), p]);
      if (info.type === 'dir') walk(p);
    }
  };
  walk('');
  const hardlinkGroups = [...byInode.values()].map((g) => g.sort().join(' = ')).sort();
  // Node has no xattr API; python's os.listxattr/getxattr reads them without following symlinks.
  const py = `
import os, sys, json
root = sys.argv[1]; out = {}
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        p = os.path.join(d, n); rel = os.path.relpath(p, root)
        try: names = os.listxattr(p, follow_symlinks=False)
        except OSError: continue
        if names: out[rel] = {k: os.getxattr(p, k, follow_symlinks=False).hex() for k in sorted(names)}
print(json.dumps(out, sort_keys=True))`;
  const xattrs = JSON.parse(execFileSync('python3', ['-c', py, root], { encoding: 'utf8' })) as TreeSnapshot['xattrs'];
  return { paths, hardlinkGroups, xattrs };
}
