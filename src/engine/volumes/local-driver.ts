// docker's `local` volume driver: each volume is <root>/NAME/_data (root = <data-root>/volumes).
// Options as docker's local driver takes them (`docker volume create -o type=… -o device=… -o o=…`):
//   - none: the _data directory itself.
//   - o=bind (type none): the host directory `device`, bound straight into containers (no host
//     mount is made, so a kill -9 of krd leaves nothing mounted); `ro` in o makes it read-only.
//   - any other type (tmpfs, ext4 on a device, …): `mount -t TYPE -o O DEVICE _data` on the host
//     when the first container mounts it, unmounted when no container holds it any more (so a
//     tmpfs volume's content lives as long as some container uses it, as with docker).
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { KrError, withContext } from '../../util/errors.ts';
import type { MountTarget, VolumeCapabilities, VolumeDriver } from './driver.ts';

const run = promisify(execFile);
const OPTION_KEYS = new Set(['type', 'device', 'o', 'size']);

const words = (o: string | undefined): string[] => (o ? o.split(',').map((w) => w.trim()).filter(Boolean) : []);
const isBind = (opts: Record<string, string>): boolean => words(opts.o).some((w) => w === 'bind' || w === 'rbind');

/** Is `path` a mount point of this mount namespace? (/proc/self/mountinfo's 5th field, octal-escaped.) */
function isMounted(path: string): boolean {
  const escaped = path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === escaped);
}

/** Bytes of regular files under dir (hard links counted once), without following symlinks. */
export async function treeSize(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const st = await lstat(p).catch(() => null);
        if (!st) continue;
        const key = `${st.dev}:${st.ino}`;
        if (st.nlink > 1 && seen.has(key)) continue;
        seen.add(key);
        total += st.size;
      }
    }
  };
  await walk(dir);
  return total;
}

export class LocalDriver implements VolumeDriver {
  readonly name = 'local';
  readonly root: string;
  /** One mount/unmount at a time per volume: two containers starting together mount it once. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(root: string) {
    this.root = root;
  }

  capabilities(): VolumeCapabilities {
    return { scope: 'local', shared: true };
  }

  private dataDir(name: string): string {
    return join(this.root, name, '_data');
  }

  checkOptions(opts: Record<string, string>): void {
    for (const k of Object.keys(opts)) if (!OPTION_KEYS.has(k)) throw new KrError('invalid', `invalid option: ${JSON.stringify(k)}`);
    if (opts.size !== undefined) throw new KrError('invalid', 'quota size requested but no quota support');
    const type = opts.type ?? '';
    const device = opts.device ?? '';
    if (type && !device) throw new KrError('invalid', 'missing required option: "device"');
    if ((device || opts.o) && !type) throw new KrError('invalid', 'missing required option: "type"');
    if (isBind(opts)) {
      if (!isAbsolute(device)) throw new KrError('invalid', `invalid device for a bind volume: ${JSON.stringify(device)}: an absolute host path is needed`);
      let st;
      try {
        st = statSync(device);
      } catch {
        throw new KrError('invalid', `bind source path does not exist: ${device}`);
      }
      if (!st.isDirectory()) throw new KrError('invalid', `bind source path is not a directory: ${device}`);
    }
  }

  async create(name: string, opts: Record<string, string>): Promise<{ mountpoint: string }> {
    this.checkOptions(opts);
    const data = this.dataDir(name);
    try {
      await mkdir(join(this.root, name), { recursive: true, mode: 0o701 });
      await mkdir(data, { recursive: true, mode: 0o755 });
    } catch (err) {
      await rm(join(this.root, name), { recursive: true, force: true }).catch(() => undefined);
      throw withContext(err, `create ${name}`);
    }
    return { mountpoint: data };
  }

  async remove(name: string, opts: Record<string, string>): Promise<void> {
    const data = this.dataDir(name);
    if (opts.type && !isBind(opts) && isMounted(data)) await this.umount(name);
    // a bind volume's content is the user's directory: only our own dir goes
    await rm(join(this.root, name), { recursive: true, force: true });
  }

  mount(name: string, opts: Record<string, string>): Promise<MountTarget> {
    if (isBind(opts)) return Promise.resolve({ kind: 'directory', path: opts.device, readonly: words(opts.o).includes('ro') });
    const data = this.dataDir(name);
    if (!opts.type) return Promise.resolve({ kind: 'directory', path: data });
    return this.serial(name, async () => {
      if (!isMounted(data)) {
        const o = words(opts.o).join(',');
        await run('mount', ['-t', opts.type, ...(o ? ['-o', o] : []), opts.device, data]).catch((err: { stderr?: string }) => {
          throw new KrError('invalid', `error while mounting volume '${data}': ${String(err.stderr ?? err).trim()}`);
        });
      }
      return { kind: 'directory' as const, path: data };
    });
  }

  async unmount(name: string, opts: Record<string, string>, _user: string, last: boolean): Promise<void> {
    if (!last || !opts.type || isBind(opts)) return;
    await this.serial(name, async () => {
      if (isMounted(this.dataDir(name))) await this.umount(name);
    });
  }

  size(name: string, opts: Record<string, string>): Promise<number> {
    return treeSize(isBind(opts) ? opts.device : this.dataDir(name));
  }

  private async umount(name: string): Promise<void> {
    await run('umount', [this.dataDir(name)]).catch((err: { stderr?: string }) => {
      throw new KrError('io', `unmount volume ${name}: ${String(err.stderr ?? err).trim()}`);
    });
  }

  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.busy.get(name) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    const tail = next.catch(() => undefined);
    this.busy.set(name, tail);
    void tail.then(() => this.busy.get(name) === tail && this.busy.delete(name));
    return next;
  }
}
