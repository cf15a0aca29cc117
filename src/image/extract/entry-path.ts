// Turning an archive member name into a path relative to the extraction root, or a reason to refuse.
// Pure string work: what the file system holds is checked by safe-tree.ts.
//
// Policy: a leading "/" is dropped (GNU tar and docker do the same), so "/etc/x" lands in
// root/etc/x; "." and empty components vanish; ".." is resolved by text, and one that would climb
// above the root makes the name hostile. Names stay "binary" (latin1) strings, one char per byte.

export type Normalized = { ok: true; rel: string; parts: string[] } | { ok: false; reason: string };

const NAME_MAX = 255; // bytes per component on Linux file systems

export function normalizeEntryPath(name: string, maxPathLength: number): Normalized {
  if (name.includes('\0')) return { ok: false, reason: 'name contains a NUL byte' };
  if (name.length > maxPathLength) return { ok: false, reason: `name is ${name.length} bytes, over the ${maxPathLength}-byte limit` };
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return { ok: false, reason: 'name climbs above the root with ".."' };
      parts.pop();
      continue;
    }
    if (part.length > NAME_MAX) return { ok: false, reason: `a name component is over ${NAME_MAX} bytes` };
    parts.push(part);
  }
  return { ok: true, rel: parts.join('/'), parts };
}

/** A name fit for a one-line message: control bytes escaped, long names shortened. */
export function printableName(name: string): string {
  const short = name.length > 160 ? `${name.slice(0, 80)}…${name.slice(-40)}` : name;
  return JSON.stringify(short);
}
