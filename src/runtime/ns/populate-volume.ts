// docker's copy-up for volumes: a volume mounted over a path the image has content at starts as
// a copy of that content, when the volume is empty. The image's root is the shared, read-only
// rootfs cache dir; the path is resolved inside it (symlinks never lead out of the image).
import { execFile } from 'node:child_process';
import { chmod, chown, lstat, readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { resolveInRoot } from '../../bali/run/mount-points.ts';
import { withContext } from '../../util/errors.ts';

const run = promisify(execFile);

export async function populateVolume(imageRoot: string, inside: string, volumeDir: string): Promise<void> {
  const from = resolveInRoot(imageRoot, inside);
  const st = await lstat(from).catch(() => null);
  if (!st?.isDirectory()) return;
  if ((await readdir(volumeDir)).length > 0) return;
  try {
    // cp -a: owners, modes, times, symlinks as links, hard links, xattrs where the target keeps them
    if ((await readdir(from)).length > 0) await run('cp', ['-a', '--no-target-directory', `${from}/.`, volumeDir]);
    await chown(volumeDir, st.uid, st.gid);
    await chmod(volumeDir, st.mode & 0o7777);
  } catch (err) {
    throw withContext(err, `copying the image's ${inside} into the volume`);
  }
}
