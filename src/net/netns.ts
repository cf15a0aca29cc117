// Network namespaces kept alive by a bind mount on a file under krd's data root (what
// `ip netns add` does under /run/netns, but at a path only this krd uses). A container's
// supervisor joins the file's namespace; its veths and addresses stay while the file exists.
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { run } from './cmd.ts';

/** A new network namespace bound at path; `ipLines` (ip -batch commands) run inside it first. */
export async function createNetns(path: string, ipLines?: string[]): Promise<void> {
  closeSync(openSync(path, 'w'));
  try {
    if (ipLines) await run(['unshare', `--net=${path}`, 'ip', '-batch', '-'], ipLines.join('\n') + '\n');
    else await run(['unshare', `--net=${path}`, 'true']);
  } catch (err) {
    if (isMounted(path)) await run(['umount', path]).catch(() => undefined);
    await rm(path, { force: true });
    throw err;
  }
}

export function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

/** Unbinds and deletes the file; the namespace goes once nothing is in it (its veths with it). */
export async function removeNetns(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (isMounted(path)) await run(['umount', path]).catch(() => run(['umount', '-l', path]));
  await rm(path, { force: true });
}

/** The namespace krd itself runs in, as a path other programs can open. */
export function ownNetns(): string {
  return `/proc/${process.pid}/ns/net`;
}
