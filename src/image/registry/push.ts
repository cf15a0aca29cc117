// push: an Image → a registry. Blobs the registry already has are skipped (HEAD), the rest are
// uploaded monolithically (POST uploads/ → PUT <location>?digest=), the manifest goes last so the
// tag never names an image with missing blobs.
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { KrError } from '../../util/errors.ts';
import { noProgress, type ProgressSink } from '../../util/progress.ts';
import { parseReference, type ImageReference, type InsecureOption } from '../reference.ts';
import { MediaType, type Descriptor, type Image } from '../types.ts';
import { RegistryClient, headerString } from './client.ts';
import type { Credentials } from './credentials.ts';
import { discard } from './http.ts';
import { forEachLimited } from './limit.ts';
import { shortId } from './pull.ts';

export interface PushOptions {
  progress?: ProgressSink;
  insecure?: InsecureOption;
  auth?: Credentials;
  /** Blobs uploaded at once (default 3). */
  concurrency?: number;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export interface PushResult {
  /** Digest of the manifest as pushed (what `name@digest` pulls). */
  digest: string;
  size: number;
  /** The reference pushed, pinned to that digest. */
  reference: ImageReference;
}

/** Pushes image's blobs and manifest to ref (its tag, or its digest when it has no tag). */
export async function push(image: Image, reference: string | ImageReference, opts: PushOptions = {}): Promise<PushResult> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  const progress = opts.progress ?? noProgress;
  const client = await RegistryClient.create(ref, 'push', opts);

  // Layers first, then the config (docker's order); duplicates upload once.
  const blobs = new Map<string, { desc: Descriptor; open: () => Promise<Readable | Buffer> }>();
  for (const layer of image.layers) {
    if (!blobs.has(layer.descriptor.digest)) blobs.set(layer.descriptor.digest, { desc: layer.descriptor, open: () => layer.open() });
  }
  const config = image.manifest.config;
  await forEachLimited([...blobs.values()], opts.concurrency ?? 3, async (blob, _i, signal) => {
    await pushBlob(client, blob.desc, blob.open, progress, signal);
  }, opts.signal);
  if (!blobs.has(config.digest)) await pushBlob(client, config, async () => image.configBytes, noProgress, opts.signal);

  const mediaType = image.manifest.mediaType ?? MediaType.ociManifest;
  const digest = await pushManifest(ref, image.manifestBytes, mediaType, { ...opts, client });
  return { digest, size: image.manifestBytes.length, reference: ref.withDigest(digest) };
}

/** PUTs manifest (or index) bytes under ref's tag (or digest); returns their digest. */
export async function pushManifest(
  reference: string | ImageReference,
  bytes: Buffer,
  mediaType: string,
  opts: PushOptions & { client?: RegistryClient } = {},
): Promise<string> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  const client = opts.client ?? (await RegistryClient.create(ref, 'push', opts));
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  if (ref.digest && ref.digest !== digest && !ref.tag) {
    throw new KrError('invalid', `cannot push manifest ${digest} under a different digest ${ref.digest}`);
  }
  const target = ref.tag ?? digest;
  const what = `manifest ${ref.name}:${target}`;
  const res = await client.request('PUT', client.url(`manifests/${target}`), {
    headers: { 'content-type': mediaType },
    body: bytes,
    signal: opts.signal,
  });
  if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await client.fail(res, what);
  discard(res);
  const stored = headerString(res.headers['docker-content-digest']);
  if (stored && stored !== digest) {
    throw new KrError('corrupt', `registry ${ref.registry} stored ${what} as ${stored}, expected ${digest}`);
  }
  return digest;
}

async function pushBlob(
  client: RegistryClient,
  desc: Descriptor,
  open: () => Promise<Readable | Buffer>,
  progress: ProgressSink,
  signal?: AbortSignal,
): Promise<void> {
  const id = shortId(desc.digest);
  const head = await client.request('HEAD', client.url(`blobs/${desc.digest}`), { signal });
  discard(head);
  if (head.status === 200) {
    progress({ id, status: 'Layer already exists' });
    return;
  }
  if (head.status !== 404) throw await client.fail(head, `blob ${desc.digest}`);

  // The POST is bodiless, so it is where a 401 challenge gets answered before the streaming PUT.
  const start = await client.request('POST', client.url('blobs/uploads/'), { signal });
  if (start.status !== 202) throw await client.fail(start, `upload of ${desc.digest}`);
  discard(start);
  const location = headerString(start.headers.location);
  if (!location) throw new KrError('unavailable', `registry ${client.ref.registry} started an upload without a Location`);
  // Location may be relative or absolute and may carry its own query (_state=…): keep it, add digest.
  const url = new URL(location, start.url);
  url.searchParams.set('digest', desc.digest);

  progress({ id, status: 'Pushing', current: 0, total: desc.size });
  const source = await open();
  const body = Buffer.isBuffer(source) ? source : counted(source, desc.size, (n) => progress({ id, status: 'Pushing', current: n, total: desc.size }));
  const res = await client.request('PUT', url, {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
    body,
    signal,
  });
  if (res.status !== 201 && res.status !== 204) {
    if (!Buffer.isBuffer(source)) source.destroy();
    throw await client.fail(res, `upload of ${desc.digest}`);
  }
  discard(res);
  progress({ id, status: 'Pushed' });
}

/** Reports bytes passing through (throttled to ~1% steps) without changing them. */
function counted(source: Readable, total: number, report: (n: number) => void): Readable {
  const step = Math.max(256 << 10, Math.floor(total / 100));
  let seen = 0;
  let reported = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen - reported >= step || seen === total) {
        reported = seen;
        report(seen);
      }
      done(null, chunk);
    },
  });
  source.on('error', (err) => meter.destroy(err));
  return source.pipe(meter);
}
