// pull: registry → content store. Blobs land first (each checked against its digest while it
// streams), the manifest and the ref last, so a ref never names an image with missing parts.
import { KrError, isKrError } from '../../util/errors.ts';
import { warmHashWorker } from '../../util/hash-worker.ts';
import { noProgress, type ProgressSink } from '../../util/progress.ts';
import { parseReference, type ImageReference, type InsecureOption } from '../reference.ts';
import { imageFromStore, type BlobStore, type StagedBlob } from '../store.ts';
import type { Descriptor, Image, Index, Manifest, Platform } from '../types.ts';
import { RegistryClient } from './client.ts';
import type { Credentials } from './credentials.ts';
import { discard } from './http.ts';
import { forEachLimited } from './limit.ts';
import { fetchManifest, parsePlatformString, selectPlatform } from './manifest.ts';

export interface PullOptions {
  store: BlobStore;
  /** "linux/arm64/v8" or a Platform; default linux/amd64. */
  platform?: string | Platform;
  progress?: ProgressSink;
  insecure?: InsecureOption;
  auth?: Credentials;
  /** Layers downloaded at once (default 3, like docker). */
  concurrency?: number;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** Pulls one platform's image into the store, sets ref `<canonical ref>` → manifest digest. */
export async function pull(reference: string | ImageReference, opts: PullOptions): Promise<Image> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  const { store, signal } = opts;
  const progress = opts.progress ?? noProgress;
  const want = typeof opts.platform === 'string' ? parsePlatformString(opts.platform) : (opts.platform ?? DEFAULT_PLATFORM);
  // Layers are hashed and written on a worker thread; it comes up while the manifest is fetched.
  warmHashWorker();
  const client = await RegistryClient.create(ref, 'pull', opts);

  let top = await fetchManifest(client, ref.manifestRef, signal);
  let index: typeof top | undefined;
  if (top.isIndex) {
    index = top;
    const chosen = selectPlatform(top.doc as Index, want, `image ${ref}`);
    top = await fetchManifest(client, chosen.digest, signal);
    if (top.isIndex) throw new KrError('invalid', `image ${ref}: nested index for ${chosen.digest} is not supported`);
  }
  const manifest = top.doc as Manifest;
  for (const d of [manifest.config, ...manifest.layers]) {
    if (typeof d?.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d.digest)) {
      throw new KrError('corrupt', `manifest of ${ref} names an invalid digest ${JSON.stringify(d?.digest)}`);
    }
  }

  const layers = manifest.layers;
  const todo: Descriptor[] = [];
  const seen = new Set<string>();
  for (const layer of layers) {
    if (seen.has(layer.digest)) continue; // the same layer twice in one image downloads once
    seen.add(layer.digest);
    if (await store.has(layer.digest)) progress({ id: shortId(layer.digest), status: 'Already exists' });
    else {
      todo.push(layer);
      progress({ id: shortId(layer.digest), status: 'Waiting' });
    }
  }
  // The config (small) downloads alongside the layers, in its own slot: one round trip and one
  // fsync less on the way to the first layer byte. A download slot is free again as soon as a
  // blob's bytes are in and checked; making it durable and visible (fdatasync, rename) runs
  // meanwhile, and all of that is done before the manifest and ref below.
  // The first failure of any of these stops the others and is what the caller sees.
  const config = manifest.config;
  const both = new AbortController();
  const onAbort = () => both.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  let first: { err: unknown } | undefined;
  const failed = (err: unknown) => {
    first ??= { err };
    both.abort(err);
  };
  const commits: Promise<void>[] = [];
  const download = async (desc: Descriptor, kind: 'layer' | 'config', sink: ProgressSink, abort: AbortSignal) => {
    const staged = await fetchBlob(client, store, desc, kind, sink, abort);
    commits.push(
      (staged ? staged.commit() : Promise.resolve()).then(
        () => {
          if (kind === 'layer') sink({ id: shortId(desc.digest), status: 'Pull complete' });
        },
        failed,
      ),
    );
  };
  try {
    await Promise.all([
      seen.has(config.digest) ? undefined : download(config, 'config', noProgress, both.signal).catch(failed),
      forEachLimited(todo, opts.concurrency ?? 3, (layer, _i, abort) => download(layer, 'layer', progress, abort), both.signal).catch(failed),
    ]);
    await Promise.all(commits);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (first) throw first.err;

  if (index) await store.putBytes(index.bytes, { digest: index.digest });
  await store.putBytes(top.bytes, { digest: top.digest });
  await store.setRef(ref.canonical, top.digest);
  return imageFromStore(store, top.digest);
}

/** The name source.ts and other callers use. */
export const pullImage = pull;

async function fetchBlob(
  client: RegistryClient,
  store: BlobStore,
  desc: Descriptor,
  kind: 'layer' | 'config',
  progress: ProgressSink,
  signal?: AbortSignal,
): Promise<StagedBlob | undefined> {
  if (await store.has(desc.digest)) return undefined;
  const id = shortId(desc.digest);
  const host = client.ref.registry;
  const res = await client.request('GET', client.url(`blobs/${desc.digest}`), { signal });
  if (res.status !== 200) {
    if (res.status === 404) {
      discard(res);
      throw new KrError('not-found', `${kind} ${desc.digest} not found on ${host} (${client.ref.repository})`);
    }
    throw await client.fail(res, `${kind} ${desc.digest}`);
  }
  const total = typeof desc.size === 'number' ? desc.size : Number(res.headers['content-length']) || undefined;
  const step = Math.max(256 << 10, Math.floor((total ?? 0) / 100));
  let reported = 0;
  let networkFailure: Error | undefined;
  res.body.once('error', (e) => (networkFailure = e));
  progress({ id, status: 'Downloading', current: 0, total });
  let staged: StagedBlob;
  try {
    staged = await store.stage(res.body, {
      digest: desc.digest,
      size: typeof desc.size === 'number' ? desc.size : undefined,
      detachable: true, // node:http hands out a fresh buffer per body chunk
      onBytes: (n) => {
        if (n - reported >= step || n === total) {
          reported = n;
          progress({ id, status: 'Downloading', current: n, total });
        }
      },
    });
  } catch (err) {
    res.body.destroy();
    if (isKrError(err, 'corrupt')) {
      const why = /size/.test(err.message) ? 'size mismatch' : 'digest mismatch';
      throw new KrError('corrupt', `${kind} ${desc.digest} from ${host}: ${why}`, { cause: err });
    }
    if (networkFailure) throw new KrError('unavailable', `download of ${kind} ${desc.digest} from ${host} failed: ${networkFailure.message}`, { cause: err });
    if (signal?.aborted && !isKrError(err)) throw new KrError('unavailable', `download of ${kind} ${desc.digest} from ${host} aborted`, { cause: err });
    if (isKrError(err)) throw err;
    throw new KrError('unavailable', `download of ${kind} ${desc.digest} from ${host} failed: ${(err as Error).message}`, { cause: err });
  }
  // The hash was checked as the bytes streamed; these two lines are docker's wording for that.
  progress({ id, status: 'Verifying Checksum' });
  progress({ id, status: 'Download complete' });
  return staged;
}
