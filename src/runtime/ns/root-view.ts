// A host path showing a container's filesystem as its processes see it, for docker cp.
//
// Why /proc/PID/root and not the overlay's upper dir over the image's lower: the container's
// mounts (binds, volumes, tmpfs, its read-only root) exist only in its own mount namespace, and
// docker cp must see them as the container does; reading upper+lower by hand would also mean
// re-implementing overlayfs (whiteouts, opaque dirs, copy-up) and writing into an upper dir under
// a live overlay mount, which the kernel calls undefined. So:
// - created or running: the container's process already sits in its root (the shim's child
//   pivot_roots before it waits for start), so /proc/<pid>/root is the view;
// - exited: a throwaway krd-shim is spawned with the container's own mount arguments (overlay
//   of the same lower/upper/work, its binds and tmpfs, no cgroups) and never started; its
//   /proc/<pid>/root is the view until the last user releases it, then it is killed and its
//   state dir removed. One view per container is shared (an overlay's upper/work dirs must not
//   be mounted twice), and starting the container waits until the view is gone.
// The kernel resolves an absolute symlink under /proc/PID/root against the *caller's* root, so
// callers resolve paths themselves (archive/in-root.ts) and never let the kernel follow a link.
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KrError } from '../../util/errors.ts';
import { ShimProcess } from './shim-process.ts';
import { spawnShim } from './spawn-shim.ts';

export interface RootView {
  root: string;
  release(): Promise<void>;
}

interface SharedView {
  ready: Promise<{ root: string; shim: ShimProcess }>;
  users: number;
  gone: Promise<void> | null;
}

export class RootViews {
  private readonly views = new Map<string, SharedView>();

  /** A view of a container that has no process (exited): shared while anyone holds it. */
  async forStopped(dir: string, id: string, mountArgs: string[], caps: string): Promise<RootView> {
    let v = this.views.get(id);
    if (v?.gone) {
      await v.gone;
      v = this.views.get(id);
    }
    if (!v) {
      v = { ready: this.spawn(dir, mountArgs, caps), users: 0, gone: null };
      this.views.set(id, v);
    }
    const shared = v;
    shared.users++;
    const made = await shared.ready.catch((err: unknown) => {
      if (--shared.users === 0) this.views.delete(id);
      throw err;
    });
    let released = false;
    return {
      root: made.root,
      release: async () => {
        if (released) return;
        released = true;
        if (--shared.users > 0) return;
        shared.gone = this.close(made.shim).finally(() => this.views.delete(id));
        await shared.gone;
      },
    };
  }

  /** Resolves once no view of the container is open (before it starts: one overlay mount at a time). */
  async idle(id: string): Promise<void> {
    for (let v = this.views.get(id); v; v = this.views.get(id)) {
      if (v.gone) await v.gone;
      else await new Promise((r) => setTimeout(r, 10));
    }
  }

  private async spawn(dir: string, mountArgs: string[], caps: string): Promise<{ root: string; shim: ShimProcess }> {
    const viewDir = join(dir, `view-${randomBytes(4).toString('hex')}`);
    await mkdir(join(viewDir, 'rootfs'), { recursive: true });
    try {
      // Never started: /dev/null is only there because the shim wants a command. The host's
      // network namespace: nothing runs, and making a network namespace can take seconds on a
      // host where many are being made and destroyed.
      const pid = await spawnShim([viewDir, '--uid', '0', '--gid', '0', '--groups', '', '--caps', caps, '--cwd', '/', '--net', 'host', ...mountArgs, '--', '/dev/null'], []);
      return { root: `/proc/${pid}/root/`, shim: new ShimProcess('view', viewDir, { tty: false, openStdin: false }) };
    } catch (err) {
      await rm(viewDir, { recursive: true, force: true });
      throw err instanceof KrError ? new KrError(err.kind, `mounting the container's filesystem: ${err.message}`) : err;
    }
  }

  private async close(shim: ShimProcess): Promise<void> {
    // SIGKILL repeated until the exit is seen: a signal frame refused under load must not leave
    // the view (and the container's next start) waiting for ever
    const exited = shim.wait().then(() => true, () => true);
    for (let i = 0; i < 30; i++) {
      await shim.kill('SIGKILL').catch(() => undefined);
      if (await Promise.race([exited, new Promise<boolean>((r) => setTimeout(() => r(false), 500).unref())])) break;
    }
    await rm(shim.dir, { recursive: true, force: true });
  }
}
