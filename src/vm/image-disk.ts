// An image as a read-only erofs disk for the guest, made once per image and cached:
// <cache>/images/<sha256 hex>.erofs plus <hex>.json (the image config and the image's passwd/group,
// which the host needs to resolve USER because the guest has no resolver before a container runs).
// Debian's erofs-utils 1.5 has no --tar, so the flattened rootfs is extracted to a temp dir first;
// mkfs.erofs gets a fixed time stamp and UUID so the same image gives the same disk bytes.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { openVerifiedTar } from '../bali/verify.ts';
import { readConfigHeader } from '../image/config-header.ts';
import { extractTar } from '../image/extract.ts';
import { flatten } from '../image/flatten.ts';
import { defaultStoreDir, openImageSource } from '../image/source.ts';
import type { ContainerConfig } from '../image/types.ts';
import { KrError, withContext } from '../util/errors.ts';

const run = promisify(execFile);

export interface ImageDisk {
  /** sha256:<hex> naming the disk: the manifest digest, or the bali file's own digest. */
  digest: string;
  /** The erofs file, absolute. */
  path: string;
  config: ContainerConfig;
  /** The image's /etc/passwd and /etc/group text ('' when missing). */
  passwd: string;
  group: string;
}

export interface ImageDiskOptions {
  /** Trusted signers for bali files (an untrusted or unsigned bali file is refused). */
  trusted: Uint8Array[];
  cacheDir?: string;
  insecureRegistry?: boolean;
}

export function defaultCradleCache(env: NodeJS.ProcessEnv = process.env): string {
  return env.KRAUD_CRADLE_CACHE || join(dirname(defaultStoreDir(env)), 'cradle');
}

/** A bali file is gzip whose tar starts with bali's config record (a PAX global header). */
async function isBaliFile(file: string): Promise<boolean> {
  if (!existsSync(file) || !/\.(tar\.gz|tgz|bali)$/.test(file)) return false;
  const head = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    const s = createReadStream(file, { start: 0, end: 1 });
    s.on('data', (c) => chunks.push(c as Buffer));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', () => resolve(Buffer.alloc(0)));
  });
  if (head[0] !== 0x1f || head[1] !== 0x8b) return false;
  // docker archives and OCI layouts may be gzipped too: they do not start with a global header
  const gunzip = (await import('node:zlib')).createGunzip();
  const first = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const s = createReadStream(file).pipe(gunzip);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= 512) s.destroy(), resolve(Buffer.concat(chunks));
    });
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', () => resolve(Buffer.concat(chunks)));
  });
  // unreadable gzip: let verification say what is wrong with it
  return first.length < 512 || first[156] === 0x67;
}

async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

async function readDb(root: string, file: string): Promise<string> {
  return readFile(join(root, file), 'utf8').catch(() => '');
}

/** mkfs.erofs over an extracted tree: fixed time stamps and UUID, so equal trees give equal bytes. */
async function makeErofs(tree: string, out: string): Promise<void> {
  try {
    await run('mkfs.erofs', ['--quiet', '-T0', '-U', '00000000-0000-0000-0000-000000000000', out, tree], { maxBuffer: 1 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    if (e.code === 'ENOENT') throw new KrError('unavailable', 'mkfs.erofs is missing: install erofs-utils (make deps)');
    throw new KrError('io', `mkfs.erofs: ${(e.stderr ?? String(err)).trim().split('\n').pop()}`);
  }
}

/**
 * The disk of `source` (registry reference, docker archive, OCI layout, or a signed bali file),
 * made now unless cached. Bali files are verified on every call (trust is the caller's, not the cache's).
 */
export async function imageDisk(source: string, opts: ImageDiskOptions): Promise<ImageDisk> {
  const cache = join(opts.cacheDir ?? defaultCradleCache(), 'images');
  await mkdir(cache, { recursive: true });
  const bali = await isBaliFile(source);
  let digest: string;
  let fill: (tree: string) => Promise<ContainerConfig>;
  let close = async () => {};
  if (bali) {
    digest = await fileDigest(source);
    fill = async (tree) => {
      const { tar, verdict } = openVerifiedTar(createReadStream(source), { trusted: opts.trusted });
      const header = await readConfigHeader(tar);
      try {
        await extractTar(tar, tree, { allowDevices: true, sameOwner: true, onHostile: 'skip' });
      } catch (err) {
        await verdict; // a verification failure explains a broken stream better than the extractor
        throw err;
      }
      await verdict;
      return header?.config ?? {};
    };
  } else {
    const image = await openImageSource(source, { insecure: opts.insecureRegistry });
    close = () => image.close();
    digest = image.manifestDigest;
    fill = async (tree) => {
      const pipe = new PassThrough();
      await Promise.all([flatten(image, pipe, { configHeader: false, tmpDir: cache }), extractTar(pipe, tree, { allowDevices: true, sameOwner: true, onHostile: 'skip' })]);
      return image.config.config ?? {};
    };
  }
  try {
    const hex = digest.replace(/^sha256:/, '');
    const path = join(cache, `${hex}.erofs`);
    const meta = join(cache, `${hex}.json`);
    if (!bali && existsSync(path) && existsSync(meta)) return { digest, path, ...(JSON.parse(await readFile(meta, 'utf8')) as Omit<ImageDisk, 'digest' | 'path'>) };
    const tmp = join(cache, `.tmp-${hex.slice(0, 12)}-${randomBytes(6).toString('hex')}`);
    try {
      const tree = join(tmp, 'tree');
      await mkdir(tree, { recursive: true });
      const config = await fill(tree);
      // docker creates the WORKDIR when it is missing; the disk is read-only in the guest
      if (config.WorkingDir && config.WorkingDir.startsWith('/') && !config.WorkingDir.split('/').includes('..')) {
        await mkdir(join(tree, config.WorkingDir), { recursive: true }).catch(() => undefined);
      }
      const info = { config, passwd: await readDb(tree, 'etc/passwd'), group: await readDb(tree, 'etc/group') };
      await makeErofs(tree, join(tmp, 'disk.erofs'));
      await writeFile(join(tmp, 'meta.json'), JSON.stringify(info));
      await rename(join(tmp, 'disk.erofs'), path);
      await rename(join(tmp, 'meta.json'), meta);
      return { digest, path, ...info };
    } finally {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    }
  } catch (err) {
    throw err instanceof KrError ? err : withContext(err, `image ${source}`);
  } finally {
    await close().catch(() => undefined);
  }
}
