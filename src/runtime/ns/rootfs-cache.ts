// Flattened image rootfs trees, extracted once per image manifest digest into a shared dir that
// every container of that image uses read-only as its overlay lower layer.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { extractTar } from '../../image/extract.ts';
import { flatten } from '../../image/flatten.ts';
import type { Image } from '../../image/types.ts';
import { withContext } from '../../util/errors.ts';

export class RootfsCache {
  readonly dir: string;
  private pending = new Map<string, Promise<string>>();

  constructor(dir: string) {
    this.dir = dir;
  }

  /** The rootfs directory of the image, extracting it first if this is its first use. */
  get(image: Image): Promise<string> {
    const key = image.manifestDigest.replace(/^sha256:/, '');
    const final = join(this.dir, key);
    if (existsSync(final)) return Promise.resolve(final);
    let p = this.pending.get(key);
    if (!p) {
      p = this.extract(image, final).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async extract(image: Image, final: string): Promise<string> {
    // into a private temp dir, then one rename: another process racing us either wins or loses whole
    const tmp = `${final}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await mkdir(tmp, { recursive: true });
      const pipe = new PassThrough();
      const writing = flatten(image, pipe, { configHeader: false, tmpDir: this.dir });
      await Promise.all([writing, extractTar(pipe, tmp, { allowDevices: true, sameOwner: true, onHostile: 'skip' })]);
      await rename(tmp, final).catch(async (err: NodeJS.ErrnoException) => {
        if (!existsSync(final)) throw err;
        await rm(tmp, { recursive: true, force: true });
      });
      return final;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw withContext(err, `rootfs of ${image.manifestDigest}`);
    }
  }
}
