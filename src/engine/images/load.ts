// docker load: a docker archive (plain or gzip) or a bali file, already spooled to a temp file.
// A bali file becomes a one-layer image: its verified tar (trailer excluded) is the layer, the
// config comes from its PAX global header. krd has no trust list yet: files signed by a
// --trusted-identity load silently, others load with a warning line; damaged files never load.
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { KrError } from '../../util/errors.ts';
import { listDockerArchive, openDockerArchive, canonicalJson } from '../../image/docker-archive.ts';
import { readConfigHeader } from '../../image/config-header.ts';
import { readPaxGlobalRecords } from '../../image/pax-global.ts';
import { parseReference } from '../../image/reference.ts';
import { imageFromStore } from '../../image/store.ts';
import { MediaType, type Image, type ImageConfigFile, type Manifest } from '../../image/types.ts';
import { openVerifiedTar } from '../../bali/verify.ts';
import { readSignerHint } from '../../bali/signer-hint.ts';
import type { JsonMessage } from './json-progress.ts';
import type { ImageService } from './service.ts';

export interface LoadOptions {
  trusted: Uint8Array[];
  send: (m: JsonMessage) => void;
  /** docker import: the name to give a bali file's image. */
  name?: string;
}

const line = (text: string): JsonMessage => ({ stream: text + '\n' });

/** Loads every image of the file; returns their IDs. */
export async function loadImages(svc: ImageService, file: string, opts: LoadOptions): Promise<string[]> {
  const head = Buffer.alloc(2);
  const fh = await fsp.open(file, 'r');
  const { bytesRead } = await fh.read(head, 0, 2, 0).finally(() => fh.close());
  if (bytesRead === 0) throw new KrError('invalid', 'failed to load: the archive is empty');
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  if (gzip && (await looksLikeBali(file))) return [await loadBali(svc, file, opts)];
  let tagLists: string[][];
  try {
    tagLists = await listDockerArchive(file, svc.tmpDir);
  } catch (err) {
    // A gzip file without manifest.json may still be a bali file made from some other tar.
    if (gzip && err instanceof KrError && /manifest\.json missing/.test(err.message)) return [await loadBali(svc, file, opts)];
    if (err instanceof KrError && err.kind === 'corrupt') {
      throw new KrError('invalid', `failed to load: ${err.message.split(file).join('the upload')}`, { cause: err });
    }
    throw err;
  }
  const ids: string[] = [];
  for (let i = 0; i < tagLists.length; i++) {
    const tags = tagLists[i];
    if (tags.length === 0 && i > 0) throw new KrError('invalid', 'failed to load: untagged images after the first in a multi-image archive are not supported');
    const image = await openDockerArchive(file, { tag: tags[0], tmpDir: svc.tmpDir });
    try {
      const canonical = tags.map((t) => parseReference(t).canonical);
      await storeImage(svc, image);
      const id = image.manifest.config.digest;
      for (const t of canonical) {
        const old = svc.records.byTag(t);
        if (old && old !== id) opts.send(line(`The image ${parseReference(t)} already exists, renaming the old one with ID ${old} to empty string`));
      }
      svc.register(await imageFromStore(svc.store, image.manifestDigest), 'load', canonical);
      for (const t of canonical) opts.send(line(`Loaded image: ${parseReference(t)}`));
      if (canonical.length === 0) opts.send(line(`Loaded image ID: ${id}`));
      ids.push(id);
    } finally {
      await image.close();
    }
  }
  return ids;
}

async function storeImage(svc: ImageService, image: Image): Promise<void> {
  await svc.storing(async () => {
    for (const layer of image.layers) {
      const d = layer.descriptor;
      if (!(await svc.store.has(d.digest))) await svc.store.ingest(await layer.open(), { digest: d.digest, size: d.size });
    }
    await svc.store.putBytes(image.configBytes, { digest: image.manifest.config.digest });
    await svc.store.putBytes(image.manifestBytes, { digest: image.manifestDigest });
  });
}

/** A gzip file whose tar starts with our PAX global header (what bali pack writes). */
async function looksLikeBali(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(64 << 10);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    let plain: Buffer;
    try {
      plain = gunzipSync(buf.subarray(0, bytesRead), { finishFlush: 2 /* Z_SYNC_FLUSH: a prefix is fine */ });
    } catch {
      return false;
    }
    const records = readPaxGlobalRecords(plain);
    return records !== null && Object.keys(records).some((k) => k.startsWith('KRAUD.'));
  } finally {
    await fh.close();
  }
}

async function loadBali(svc: ImageService, file: string, opts: LoadOptions): Promise<string> {
  const { tar, verdict } = openVerifiedTar(createReadStream(file, { highWaterMark: 1 << 20 }), { trusted: opts.trusted, insecure: true });
  const header = await readConfigHeader(tar);
  // The first bytes (where a signer hint sits) are kept on the way to the store.
  const first: Buffer[] = [];
  let firstBytes = 0;
  const tap = new Transform({
    transform(c: Buffer, _enc, done) {
      if (firstBytes < 65536) {
        first.push(c.subarray(0, 65536 - firstBytes));
        firstBytes += Math.min(c.length, 65536 - firstBytes);
      }
      done(null, c);
    },
  });
  pipeline(tar, tap).catch(() => {}); // a failure reaches the store through tap
  const layer = await svc.storing(async () => {
    // A verification failure surfaces in the stream as the raw error; the verdict says why.
    const staged = await svc.store.stage(tap).catch(async (err: unknown) => {
      throw await verdict.then(() => err, (why: unknown) => why);
    });
    try {
      const v = await verdict;
      if (staged.size !== v.tarBytes) throw new KrError('io', `stored ${staged.size} of the ${v.tarBytes} verified bytes`);
      const hint = readSignerHint(Buffer.concat(first));
      if (v.signed && v.signer === null && hint !== null) {
        throw new KrError('corrupt', 'bad signature: the file was changed after signing');
      }
      if (v.trusted) opts.send(line(`Verified bali file signed by ${v.signer}`));
      else if (!v.signed) opts.send(line('Warning: the bali file is not signed; loaded anyway'));
      else if (v.signer) opts.send(line(`Warning: the bali file is signed by ${v.signer}, which is not a trusted identity (krd --trusted-identity); loaded anyway`));
      else opts.send(line('Warning: the bali file is signed by an unknown key, which is not a trusted identity (krd --trusted-identity); loaded anyway'));
      await staged.commit();
      return { digest: staged.digest, size: staged.size, signer: v.signer, trusted: v.trusted };
    } catch (err) {
      await staged.discard();
      throw err;
    }
  });
  const config: ImageConfigFile = {
    architecture: header?.architecture ?? 'amd64',
    os: header?.os ?? 'linux',
    ...(header?.variant ? { variant: header.variant } : {}),
    config: header?.config ?? {},
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
    history: [{ created_by: 'bali', comment: layer.signer ? `signed by ${layer.signer}` : 'unsigned' }],
  };
  const configBytes = Buffer.from(canonicalJson(config));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: '', size: configBytes.length },
    layers: [{ mediaType: MediaType.ociLayer, digest: layer.digest, size: layer.size }],
  };
  const manifestDigest = await svc.storing(async () => {
    manifest.config.digest = await svc.store.putBytes(configBytes);
    return svc.store.putBytes(Buffer.from(canonicalJson(manifest)));
  });
  const tags = opts.name ? [parseReference(opts.name).canonical] : [];
  const id = svc.register(await imageFromStore(svc.store, manifestDigest), 'bali', tags);
  for (const t of tags) opts.send(line(`Loaded image: ${parseReference(t)}`));
  if (!tags.length) opts.send(line(`Loaded image ID: ${id}`));
  return id;
}
