// One virtiofsd per shared host directory (cradle's -v, krd's binds into pod VMs): it serves only
// that directory (chroot sandbox) on a vhost-user socket qemu connects to, and exits when qemu's
// end of the socket goes away.
//
// Read-only shares are enforced on the host, not only by the guest's mount flags (the guest is
// hostile, and Debian's virtiofsd 7.2 has no read-only mode): virtiofsd runs in a mount namespace
// of its own where its source is a read-only bind mount of the directory, so any write the guest
// asks for fails with EROFS in the host kernel. The bind lives and dies with that namespace:
// nothing is left mounted on the host.
//
// A single host file (docker's -v FILE:/etc/app.conf) is shared the same way, through a staging
// directory that holds nothing but that file: in virtiofsd's own mount namespace, a tmpfs with one
// empty file (SHARED_FILE) on which the host file is bind-mounted (read-only for a read-only share),
// the tmpfs then made read-only. virtiofsd serves (and chroots into) that tmpfs, so the guest sees
// the file and never its siblings or its parent, and cannot add files beside it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KrError } from '../util/errors.ts';
import { SHARED_FILE } from './launch-spec.ts';

export const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';
const TAG = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// $1 the directory, $2 the (empty) mount point, then virtiofsd's command line
const READ_ONLY_BIND = 'mount --bind -- "$1" "$2" && mount -o remount,bind,ro -- "$2" && shift 2 && exec "$@"';
// $1 the file, $2 the (empty) staging mount point, $3 ro or rw, then virtiofsd's command line
const FILE_STAGING = `mount -t tmpfs -o mode=0755,size=4k,nr_inodes=4 kraud-file "$2" && : > "$2/${SHARED_FILE}" && mount --bind -- "$1" "$2/${SHARED_FILE}" && { [ "$3" = rw ] || mount -o remount,bind,ro -- "$2/${SHARED_FILE}"; } && mount -o remount,ro -- "$2" && shift 3 && exec "$@"`;

export interface Share {
  tag: string;
  source: string;
  readonly: boolean;
  /** `source` is a file, served as the one file (SHARED_FILE) of an otherwise empty directory. */
  file?: boolean;
}

export interface RunningShare {
  tag: string;
  /** The vhost-user socket, relative to the work dir (unix socket paths are short; qemu runs there). */
  socket: string;
  daemon: ChildProcess;
}

/**
 * Starts the share's virtiofsd with `workDir` as its working directory (its socket and, for a
 * read-only or file share, its mount point are made there) and waits for its socket. `detached`: in a
 * session of its own, to outlive the caller (krd's pods outlive a krd restart).
 */
export async function startVirtiofsd(workDir: string, share: Share, o: { detached: boolean; timeoutMs?: number }): Promise<RunningShare> {
  if (!TAG.test(share.tag)) throw new KrError('invalid', `invalid share tag: ${JSON.stringify(share.tag)}`);
  // unique: virtiofsd names its pid file (a lock) after the socket path, so two pods' b0 must differ
  const socket = `fs-${share.tag}-${randomBytes(6).toString('hex')}.sock`;
  const daemonArgs = [VIRTIOFSD, `--socket-path=${socket}`, '-o', 'cache=auto', '-o', 'sandbox=chroot'];
  const privateMounts = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c'];
  let argv: string[];
  if (share.file) {
    const staging = join(workDir, `file-${share.tag}`);
    await mkdir(staging, { recursive: true });
    argv = [...privateMounts, FILE_STAGING, 'virtiofs-file', share.source, staging, share.readonly ? 'ro' : 'rw', ...daemonArgs, '-o', `source=${staging}`];
  } else if (share.readonly) {
    const mountPoint = join(workDir, `ro-${share.tag}`);
    await mkdir(mountPoint, { recursive: true });
    argv = [...privateMounts, READ_ONLY_BIND, 'virtiofs-ro', share.source, mountPoint, ...daemonArgs, '-o', `source=${mountPoint}`];
  } else {
    argv = [...daemonArgs, '-o', `source=${share.source}`];
  }
  const daemon = spawn(argv[0], argv.slice(1), { cwd: workDir, detached: o.detached, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  daemon.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
  let exited = false;
  daemon.once('exit', () => (exited = true));
  daemon.once('error', (e) => ((err += e.message), (exited = true)));
  if (o.detached) daemon.unref();
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  while (!existsSync(join(workDir, socket))) {
    if (exited || Date.now() > deadline) {
      daemon.kill('SIGKILL');
      const why = err.trim().split('\n').pop() || (exited ? 'it exited' : 'no socket in time');
      throw new KrError('unavailable', `virtiofsd for ${share.source}: ${why}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  // its messages are of no use once it serves; an unread pipe must not block it
  daemon.stderr!.removeAllListeners('data').resume();
  (daemon.stderr as unknown as { unref?: () => void }).unref?.();
  return { tag: share.tag, socket, daemon };
}

/** Starts every share's virtiofsd; if one fails, the ones started are stopped. */
export async function startShares(workDir: string, shares: Share[], o: { detached: boolean }): Promise<RunningShare[]> {
  const started: RunningShare[] = [];
  try {
    for (const sh of shares) started.push(await startVirtiofsd(workDir, sh, o));
    return started;
  } catch (err) {
    for (const s of started) s.daemon.kill('SIGKILL');
    throw err;
  }
}
