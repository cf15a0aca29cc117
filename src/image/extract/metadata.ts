// Owner, mode, xattrs and mtime: applied through an open fd for files and directories (nothing to
// resolve, so nothing to follow), by path only for symlinks (l* calls) and fresh device nodes.
import { fchmodSync, fchownSync, futimesSync, lchownSync, lutimesSync } from 'node:fs';
import { chmod, lchown, lutimes, type FileHandle } from 'node:fs/promises';
import type { TarHeader } from '../tar/tar-header.ts';
import { cString, nativeOps } from './native-ops.ts';

export interface MetaPolicy {
  sameOwner: boolean;
  /** With sameOwner: this owner for every entry instead of the archive's. */
  owner?: { uid: number; gid: number };
  /** Counts xattrs not applied (refused by the file system, or by policy). */
  xattrSkipped(count: number): void;
}

const uidOf = (h: TarHeader, policy: MetaPolicy): number => policy.owner?.uid ?? h.uid;
const gidOf = (h: TarHeader, policy: MetaPolicy): number => policy.owner?.gid ?? h.gid;

/** setuid/setgid only make sense with the archive's owners; without them the bits are dropped. */
export const modeFor = (h: TarHeader, policy: MetaPolicy): number => (policy.sameOwner ? h.mode : h.mode & ~0o6000) & 0o7777;

// overlayfs reads trusted.overlay.* (redirects, opaque dirs, metacopy); an image must not steer an
// overlay mount that may one day use this tree as a layer.
const refusedXattr = (name: string): boolean => name.startsWith('trusted.overlay.');

/** fchown, then fchmod (chown clears setuid), then xattrs (chown also clears security.capability), then the mtime. */
export async function applyByFd(fh: FileHandle, h: TarHeader, policy: MetaPolicy): Promise<void> {
  if (policy.sameOwner) await fh.chown(uidOf(h, policy), gidOf(h, policy));
  await fh.chmod(modeFor(h, policy));
  if (h.xattrs) setXattrs(fh.fd, h.xattrs, policy);
  await fh.utimes(h.mtime, h.mtime);
}

/** The same, synchronously (small files: see files.ts). */
export function applyByFdSync(fd: number, h: TarHeader, policy: MetaPolicy): void {
  if (policy.sameOwner) fchownSync(fd, uidOf(h, policy), gidOf(h, policy));
  fchmodSync(fd, modeFor(h, policy));
  if (h.xattrs) setXattrs(fd, h.xattrs, policy);
  futimesSync(fd, h.mtime, h.mtime);
}

function setXattrs(fd: number, xattrs: Map<string, Buffer>, policy: MetaPolicy): void {
  const ops = nativeOps();
  let skipped = 0;
  for (const [name, value] of xattrs) {
    // Best effort: tmpfs may refuse user.*, an unprivileged run refuses trusted.* and security.*.
    if (!ops || refusedXattr(name) || name.includes('\0') || ops.fsetxattr(fd, cString(Buffer.from(name, 'latin1')), value) !== 0) skipped++;
  }
  if (skipped > 0) policy.xattrSkipped(skipped);
}

/** For a symlink: owner and mtime of the link itself (synchronously); xattrs on symlinks are not kept. */
export function applyToSymlinkSync(path: Buffer, h: TarHeader, policy: MetaPolicy): void {
  if (policy.sameOwner) lchownSync(path, uidOf(h, policy), gidOf(h, policy));
  lutimesSync(path, h.mtime, h.mtime);
  if (h.xattrs) policy.xattrSkipped(h.xattrs.size);
}

/** For a fifo or device node this run has just created at `path` (so chmod follows nothing). */
export async function applyToNode(path: Buffer, h: TarHeader, policy: MetaPolicy): Promise<void> {
  if (policy.sameOwner) await lchown(path, uidOf(h, policy), gidOf(h, policy));
  await chmod(path, modeFor(h, policy));
  await lutimes(path, h.mtime, h.mtime);
  if (h.xattrs) policy.xattrSkipped(h.xattrs.size);
}
