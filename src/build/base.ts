// FROM: where a stage starts. `scratch` is empty; a bali file (path or URL) is verified and
// extracted; anything else is an image source (registry reference, docker archive, OCI layout),
// pulled or read, flattened and extracted. Extracted bases are cached by content digest.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { KrError } from '../util/errors.ts';
import { sha256File } from '../util/hash-file.ts';
import type { ProgressSink } from '../util/progress.ts';
import { readConfigHeader } from '../image/config-header.ts';
import { extractTar } from '../image/extract.ts';
import { flatten } from '../image/flatten.ts';
import { openImageSource } from '../image/source.ts';
import type { ContainerConfig } from '../image/types.ts';
import { openVerifiedTar } from '../bali/verify.ts';
import { identityString } from '../bali/keys.ts';
import { openSource } from '../util/fetch.ts';
import type { BuildCache } from './cache.ts';

export interface Base {
  /** Identifies the content (cache keys build on it). */
  id: string;
  /** Layer dir relative to the cache root, or null for scratch. */
  layer: string | null;
  config: ContainerConfig;
}

export interface BaseOptions {
  cache: BuildCache;
  /** Relative paths in FROM (./base.tar.gz) are relative to the build context. */
  context: string;
  /** Identities whose bali files FROM accepts (the local key's is always among them). */
  trusted: Uint8Array[];
  insecure: boolean;
  progress?: ProgressSink;
}

function isBaliSource(ref: string): boolean {
  if (/^https?:\/\//i.test(ref) || ref.startsWith('file://')) return true;
  if (!fs.existsSync(ref) || fs.statSync(ref).isDirectory()) return false;
  const head = Buffer.alloc(2);
  const fd = fs.openSync(ref, 'r');
  fs.readSync(fd, head, 0, 2, 0);
  fs.closeSync(fd);
  // A gzip file could still be a gzipped docker archive; bali files are what we sign: *.tar.gz
  // that `bali inspect` reads. Docker archives are plain tar (docker save) far more often.
  return head[0] === 0x1f && head[1] === 0x8b && !/\.docker\.tar\.gz$/.test(ref);
}

/** What we know about an extracted bali base: the file's digest fixes its signer and config. */
interface BaliBaseRecord {
  signer: string | null;
  trusted: boolean;
  config: ContainerConfig;
}

/** A cached extraction is reused only if this build would trust the file too. */
function reusable(record: BaliBaseRecord, opts: BaseOptions): boolean {
  if (opts.insecure) return true;
  if (!record.trusted || !record.signer) return false;
  return opts.trusted.some((k) => identityString(k) === record.signer);
}

async function fromBaliFile(ref: string, opts: BaseOptions): Promise<Base> {
  // A local file is hashed first (fast), so an unchanged base is not verified and extracted again.
  const local = !/^https?:\/\//i.test(ref);
  const file = ref.startsWith('file://') ? new URL(ref).pathname : ref;
  if (local) {
    const hex = sha256File(file);
    const layer = opts.cache.base(hex);
    const record = opts.cache.readMeta<BaliBaseRecord>(`bali-${hex}`);
    if (layer && record && reusable(record, opts)) return { id: `sha256:${hex}`, layer, config: record.config };
  }
  // Hash, verify and extract in one pass; the cache entry is named by the file's digest.
  const src = await openSource(ref, opts.progress);
  const fileHash = createHash('sha256');
  const tap = new PassThrough({ highWaterMark: 1 << 20 });
  tap.on('data', (c: Buffer) => fileHash.update(c));
  src.stream.on('error', (err) => tap.destroy(err));
  src.stream.pipe(tap);
  const { tar, verdict } = openVerifiedTar(tap, { trusted: opts.trusted, insecure: opts.insecure });
  const header = await readConfigHeader(tar);
  let id = '';
  let record: BaliBaseRecord | null = null;
  const layer = await opts.cache.addBase(async (dir) => {
    try {
      await extractTar(tar, dir, { allowDevices: true });
    } catch (err) {
      await verdict; // a verification failure explains a broken stream best
      throw err;
    }
    const v = await verdict;
    id = fileHash.digest('hex');
    record = { signer: v.signer, trusted: v.trusted, config: header?.config ?? {} };
    return id;
  });
  opts.cache.writeMeta(`bali-${id}`, record);
  return { id: `sha256:${id}`, layer, config: header?.config ?? {} };
}

export async function resolveBase(ref: string, opts: BaseOptions): Promise<Base> {
  if (ref === 'scratch') return { id: 'scratch', layer: null, config: {} };
  if (/^\.\.?\//.test(ref)) ref = path.resolve(opts.context, ref);
  if (isBaliSource(ref)) return fromBaliFile(ref, opts);
  const image = await openImageSource(ref, { progress: opts.progress });
  try {
    const id = image.manifestDigest;
    const config = image.config.config ?? {};
    const cached = opts.cache.base(id.replace(/^sha256:/, ''));
    if (cached) return { id, layer: cached, config };
    const layer = await opts.cache.addBase(async (dir) => {
      const pass = new PassThrough({ highWaterMark: 1 << 20 });
      await Promise.all([flatten(image, pass, { configHeader: false }), extractTar(pass, dir, { allowDevices: true })]);
      return id.replace(/^sha256:/, '');
    });
    return { id, layer, config };
  } catch (err) {
    if (err instanceof KrError) throw new KrError(err.kind, `FROM ${ref}: ${err.message}`, { cause: err });
    throw err;
  } finally {
    await image.close();
  }
}
