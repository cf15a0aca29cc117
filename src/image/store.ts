// A content-addressed blob store on disk:
//   <root>/blobs/sha256/<hex>   complete, verified blobs (only ever appear by rename)
//   <root>/tmp/<pid>-<random>   blobs being written; same filesystem so rename is atomic
//   <root>/refs/<encoded name>  named references → manifest digest
// A blob becomes visible only after its bytes were hashed, checked, fsynced and renamed into
// place, so a failure or a kill at any point leaves at most a temp file, which the next open()
// or gc() removes once the process that wrote it is gone.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { KrError, withContext } from '../util/errors.ts';
import { sha256Digest } from './digest-check.ts';
import { writeHashed, type ReceiveOptions } from './store/write-hashed.ts';
import type { Image, Index, Layer, Manifest, ImageConfigFile, Descriptor } from './types.ts';

const DIGEST = /^sha256:([a-f0-9]{64})$/;

/** What to expect of the bytes (size, digest), and how to receive them (store/write-hashed.ts). */
export interface IngestOptions extends ReceiveOptions {
  /** Expected digest; a mismatch throws KrError('corrupt') and stores nothing. */
  digest?: string;
}

export interface IngestResult {
  digest: string;
  size: number;
}

/** A blob received and checked but not yet published (see BlobStore.stage). */
export interface StagedBlob extends IngestResult {
  /** fdatasync, rename into place, fsync the directory; idempotent. */
  commit(): Promise<void>;
  /** Removes the temp file instead. */
  discard(): Promise<void>;
}

export interface GcResult {
  removed: string[];
  freedBytes: number;
}

export function hexOf(digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new KrError('invalid', `invalid digest "${digest}"`);
  return m[1];
}

export class BlobStore {
  readonly root: string;
  // Temp files this process is writing right now: gc must not sweep them.
  private readonly active = new Set<string>();

  private constructor(root: string) {
    this.root = root;
  }

  /** Opens (creating if needed) a store under root and removes temp files left by dead writers. */
  static async open(root: string): Promise<BlobStore> {
    const store = new BlobStore(root);
    try {
      await fsp.mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
      await fsp.mkdir(join(root, 'tmp'), { recursive: true });
      await fsp.mkdir(join(root, 'refs'), { recursive: true });
    } catch (err) {
      throw withContext(err, `cannot open image store ${root}`);
    }
    await store.cleanTmp();
    return store;
  }

  path(digest: string): string {
    return join(this.root, 'blobs', 'sha256', hexOf(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      await fsp.access(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  async size(digest: string): Promise<number> {
    try {
      return (await fsp.stat(this.path(digest))).size;
    } catch (err) {
      throw this.missing(digest, err);
    }
  }

  /** A stream of the blob's bytes; KrError('not-found') if absent. */
  async open(digest: string): Promise<Readable> {
    const file = this.path(digest);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (err) {
      throw this.missing(digest, err);
    }
    // The stream owns the handle and closes it at end or on destroy.
    return handle.createReadStream({ highWaterMark: 1 << 20 });
  }

  async readBytes(digest: string): Promise<Buffer> {
    try {
      return await fsp.readFile(this.path(digest));
    } catch (err) {
      throw this.missing(digest, err);
    }
  }

  /** Streams `source` into the store, hashing as it goes; returns digest and size. */
  async ingest(source: Readable | AsyncIterable<Uint8Array>, options: IngestOptions = {}): Promise<IngestResult> {
    const staged = await this.stage(source, options);
    await staged.commit();
    return { digest: staged.digest, size: staged.size };
  }

  /**
   * The first half of ingest: receives, hashes and checks the bytes into a temp file and returns
   * once they are all in. `commit()` then makes the blob durable and visible (fdatasync, rename,
   * directory fsync); a caller can start the next download meanwhile. Until committed the blob
   * is only a temp file, which discard(), open() or gc() removes.
   */
  async stage(source: Readable | AsyncIterable<Uint8Array>, options: IngestOptions = {}): Promise<StagedBlob> {
    if (options.digest !== undefined) hexOf(options.digest);
    const tmp = this.tempPath();
    this.active.add(tmp);
    let handle: fsp.FileHandle | undefined;
    const fail = async (err: unknown): Promise<never> => {
      await handle?.close().catch(() => {});
      handle = undefined;
      await fsp.rm(tmp, { force: true }).catch(() => {});
      this.active.delete(tmp);
      if (err instanceof KrError) throw err;
      throw withContext(err, 'cannot store blob');
    };
    let received: number;
    let digest: string;
    try {
      handle = await fsp.open(tmp, 'wx');
      ({ received, digest } = await writeHashed(source, handle, options));
      if (options.size !== undefined && received !== options.size) {
        throw new KrError('corrupt', `size mismatch: expected ${options.size} bytes, got ${received}`);
      }
      if (options.digest !== undefined && options.digest !== digest) {
        throw new KrError('corrupt', `digest mismatch: expected ${options.digest}, got ${digest}`);
      }
    } catch (err) {
      return fail(err);
    }
    let settled: Promise<void> | undefined;
    return {
      digest,
      size: received,
      commit: () =>
        (settled ??= (async () => {
          try {
            // Data (and size) on disk before the rename can publish the name.
            await handle!.datasync();
            await handle!.close();
            handle = undefined;
            await fsp.rename(tmp, this.path(digest));
            this.active.delete(tmp);
            await this.syncDir(join(this.root, 'blobs', 'sha256'));
          } catch (err) {
            await fail(err);
          }
        })()),
      discard: () => (settled ??= fail(new KrError('invalid', 'discarded')).catch(() => {})),
    };
  }

  /** Stores bytes already in memory; returns their digest. */
  async putBytes(bytes: Uint8Array, options: { digest?: string } = {}): Promise<string> {
    const digest = sha256Digest(bytes);
    if (options.digest !== undefined && options.digest !== digest) {
      throw new KrError('corrupt', `digest mismatch: expected ${options.digest}, got ${digest}`);
    }
    if (await this.has(digest)) return digest;
    await this.ingest(Readable.from([Buffer.from(bytes)]), { digest, size: bytes.length });
    return digest;
  }

  /** Points a name (usually a canonical image reference) at a manifest digest, atomically. */
  async setRef(name: string, manifestDigest: string): Promise<void> {
    hexOf(manifestDigest);
    if (name === '') throw new KrError('invalid', 'empty ref name');
    const tmp = this.tempPath();
    try {
      await fsp.writeFile(tmp, manifestDigest + '\n', { flush: true });
      await fsp.rename(tmp, this.refPath(name));
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      throw withContext(err, `cannot set ref ${name}`);
    }
  }

  async getRef(name: string): Promise<string | undefined> {
    try {
      return (await fsp.readFile(this.refPath(name), 'utf8')).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw withContext(err, `cannot read ref ${name}`);
    }
  }

  async listRefs(): Promise<{ name: string; digest: string }[]> {
    const files = await fsp.readdir(join(this.root, 'refs'));
    const refs: { name: string; digest: string }[] = [];
    for (const file of files.sort()) {
      const name = decodeURIComponent(file);
      const digest = await this.getRef(name);
      if (digest !== undefined) refs.push({ name, digest });
    }
    return refs;
  }

  /** Removes a ref; returns whether it existed. Blobs stay until gc(). */
  async deleteRef(name: string): Promise<boolean> {
    try {
      await fsp.unlink(this.refPath(name));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw withContext(err, `cannot delete ref ${name}`);
    }
  }

  /** Deletes blobs no ref reaches (ref → index → manifests → config + layers) and stale temp files. */
  async gc(): Promise<GcResult> {
    await this.cleanTmp();
    const live = new Set<string>();
    for (const ref of await this.listRefs()) await this.mark(ref.digest, live);
    const removed: string[] = [];
    let freedBytes = 0;
    const dir = join(this.root, 'blobs', 'sha256');
    for (const hex of await fsp.readdir(dir)) {
      const digest = `sha256:${hex}`;
      if (live.has(digest)) continue;
      const file = join(dir, hex);
      const st = await fsp.stat(file).catch(() => undefined);
      await fsp.rm(file, { force: true });
      removed.push(digest);
      freedBytes += st?.size ?? 0;
    }
    return { removed, freedBytes };
  }

  private async mark(digest: string, live: Set<string>): Promise<void> {
    if (live.has(digest) || !DIGEST.test(digest)) return;
    live.add(digest);
    let doc: Partial<Manifest & Index>;
    try {
      doc = JSON.parse((await this.readBytes(digest)).toString('utf8'));
    } catch {
      return; // absent or not JSON: nothing further to reach
    }
    const children: Descriptor[] = [];
    if (Array.isArray(doc.manifests)) children.push(...doc.manifests);
    if (doc.config && typeof doc.config === 'object') children.push(doc.config);
    if (Array.isArray(doc.layers)) children.push(...doc.layers);
    for (const child of children) {
      if (child && typeof child.digest === 'string') await this.mark(child.digest, live);
    }
  }

  /** Removes temp files whose writer is no longer running (or is us but not writing them). */
  private async cleanTmp(): Promise<void> {
    const dir = join(this.root, 'tmp');
    for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
      const file = join(dir, name);
      if (this.active.has(file)) continue;
      const pid = Number(name.split('-')[0]);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) continue;
      await fsp.rm(file, { force: true, recursive: true }).catch(() => {});
    }
  }

  /** A fresh temp file name; the pid in it tells cleanTmp() whose it is. */
  private tempPath(): string {
    return join(this.root, 'tmp', `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  private refPath(name: string): string {
    // encodeURIComponent keeps "/" ":" "@" out of file names and round-trips exactly.
    return join(this.root, 'refs', encodeURIComponent(name));
  }

  private missing(digest: string, err: unknown): KrError {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new KrError('not-found', `blob ${digest} not in store ${this.root}`);
    return withContext(err, `cannot read blob ${digest}`);
  }

  private async syncDir(dir: string): Promise<void> {
    const handle = await fsp.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The single-platform image a stored manifest describes; its layers open from the store. */
export async function imageFromStore(store: BlobStore, manifestDigest: string): Promise<Image> {
  const manifestBytes = await store.readBytes(manifestDigest);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8'));
  } catch {
    throw new KrError('corrupt', `manifest ${manifestDigest} in store is not JSON`);
  }
  if (!manifest.config || !Array.isArray(manifest.layers)) {
    throw new KrError('invalid', `${manifestDigest} is not an image manifest (an index needs a platform chosen first)`);
  }
  const configBytes = await store.readBytes(manifest.config.digest);
  let config: ImageConfigFile;
  try {
    config = JSON.parse(configBytes.toString('utf8'));
  } catch {
    throw new KrError('corrupt', `image config ${manifest.config.digest} in store is not JSON`);
  }
  const layers: Layer[] = manifest.layers.map((descriptor) => ({
    descriptor,
    open: () => store.open(descriptor.digest),
  }));
  return { manifest, manifestDigest, manifestBytes, config, configBytes, layers };
}
