// Overlay mounts for the builder: each step's filesystem is an overlay of the layers below it
// (read-only lowers) and a fresh upper dir that becomes the step's layer. The builder runs in a
// private mount namespace of its own (bali-enter unshare), so every mount here vanishes with
// the process, even after a crash or kill -9.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { KrError } from '../util/errors.ts';

function mount(args: string[], cwd: string): void {
  const r = spawnSync('mount', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new KrError('io', `mount ${args.join(' ')}: ${(r.stderr || '').trim() || `exit ${r.status}`}`);
}

export function unmount(target: string): void {
  const r = spawnSync('umount', [target], { encoding: 'utf8' });
  if (r.status !== 0) {
    const lazy = spawnSync('umount', ['-l', target], { encoding: 'utf8' });
    if (lazy.status !== 0) throw new KrError('io', `umount ${target}: ${(r.stderr || '').trim()}`);
  }
}

/**
 * Mounts `lowers` (top first, relative to `base` to keep the option string short: the kernel
 * caps it at one page) with an optional writable upper dir at `target`.
 */
export function mountOverlay(base: string, lowers: string[], target: string, upper?: { diff: string; work: string }): void {
  if (lowers.length === 0) throw new Error('overlay needs at least one lower dir');
  fs.mkdirSync(target, { recursive: true });
  const rel = (p: string) => (path.isAbsolute(p) ? path.relative(base, p) : p);
  let opts = `lowerdir=${lowers.map(rel).join(':')}`;
  if (upper) opts += `,upperdir=${rel(upper.diff)},workdir=${rel(upper.work)}`;
  if (opts.length > 4000) throw new KrError('invalid', `too many layers for one overlay mount (${lowers.length})`);
  // A read-only overlay needs two lowers or more; an empty dir fills in for a single one.
  if (!upper && lowers.length === 1) opts = `lowerdir=${rel(lowers[0])}:${rel(emptyDir(base))}`;
  mount(['-t', 'overlay', 'overlay', '-o', opts, target], base);
}

export function emptyDir(base: string): string {
  const dir = path.join(base, 'empty');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
