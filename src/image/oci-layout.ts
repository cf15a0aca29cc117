// OCI image layouts (oci-layout, index.json, blobs/<alg>/<hex>): read from a directory or from a
// tarball of one (plain or gzip), and written to a directory. Every blob is checked against its
// digest as it is read.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KrError, withContext } from '../util/errors.ts';
import { checkBytes, verifying } from './digest-check.ts';
import { ArchiveFile } from './tar/archive-file.ts';
import { MediaType, type Descriptor, type Image, type ImageConfigFile, type Index, type Layer, type Manifest, type Platform } from './types.ts';

export const REF_NAME = 'org.opencontainers.image.ref.name';
const MAX_NESTING = 4;

export interface OciLayoutOptions {
  /** Picks the manifest whose org.opencontainers.image.ref.name annotation equals this. */
  tag?: string;
  /** "os/arch[/variant]" for multi-platform indexes; default linux/amd64. */
  platform?: string;
  /** Where a gzipped layout tarball is decompressed to (default os.tmpdir()). */
  tmpDir?: string;
}

export interface LayoutImage extends Image {
  /** Releases the open tarball (no-op for directories). Layers cannot be read afterwards. */
  close(): Promise<void>;
}

/** Where a layout's files come from: a directory or a tarball. */
interface LayoutFiles {
  read(name: string): Promise<Buffer | null>;
  exists(name: string): Promise<boolean>;
  open(name: string): Readable;
  close(): Promise<void>;
}

function dirFiles(dir: string): LayoutFiles {
  return {
    async read(name) {
      try {
        return await readFile(join(dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw withContext(err, `oci layout ${dir}`);
      }
    },
    async exists(name) {
      return stat(join(dir, name)).then((s) => s.isFile(), () => false);
    },
    open: (name) => createReadStream(join(dir, name), { highWaterMark: 1024 * 1024 }),
    close: async () => {},
  };
}

function tarFiles(archive: ArchiveFile): LayoutFiles {
  return {
    read: (name) => archive.read(name),
    exists: async (name) => archive.has(name),
    open: (name) => archive.openMember(name),
    close: () => archive.close(),
  };
}

export function blobPath(digest: string): string {
  const m = /^([a-z0-9]+):([a-f0-9]{32,128})$/.exec(digest);
  if (!m) throw new KrError('corrupt', `invalid digest ${JSON.stringify(digest)}`);
  return `blobs/${m[1]}/${m[2]}`;
}

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new KrError('invalid', `platform ${JSON.stringify(s)}: expected os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new KrError('corrupt', `${what} is not valid JSON`);
  }
}

const isIndexType = (t: string | undefined): boolean => t === MediaType.ociIndex || t === MediaType.dockerManifestList;

export async function openOciLayout(path: string, opts: OciLayoutOptions = {}): Promise<LayoutImage> {
  let files: LayoutFiles;
  const info = await stat(path).catch((err) => {
    throw withContext(err, `oci layout ${path}`);
  });
  files = info.isDirectory() ? dirFiles(path) : tarFiles(await ArchiveFile.open(path, opts.tmpDir));
  try {
    return await readImage(path, files, opts);
  } catch (err) {
    await files.close();
    throw err;
  }
}

async function readImage(path: string, files: LayoutFiles, opts: OciLayoutOptions): Promise<LayoutImage> {
  const what = `oci layout ${path}`;
  const layoutFile = await files.read('oci-layout');
  if (layoutFile === null) throw new KrError('corrupt', `${what}: oci-layout missing (not an OCI image layout)`);
  const indexBytes = await files.read('index.json');
  if (indexBytes === null) throw new KrError('corrupt', `${what}: index.json missing`);
  const index = parseJson<Index>(indexBytes, `${what}: index.json`);
  if (!Array.isArray(index.manifests)) throw new KrError('corrupt', `${what}: index.json has no manifests`);

  const readBlob = async (d: Descriptor): Promise<Buffer> => {
    const bytes = await files.read(blobPath(d.digest));
    if (bytes === null) throw new KrError('corrupt', `${what}: blob ${d.digest} missing`);
    checkBytes(bytes, d.digest, `${what}: blob ${d.digest}`);
    return bytes;
  };

  let desc = pickByTag(index.manifests, opts.tag, what);
  const platform = parsePlatform(opts.platform ?? 'linux/amd64');
  for (let depth = 0; ; depth++) {
    if (depth > MAX_NESTING) throw new KrError('corrupt', `${what}: indexes nested too deeply`);
    const bytes = await readBlob(desc);
    const doc = parseJson<Manifest & Index>(bytes, `${what}: manifest ${desc.digest}`);
    if (isIndexType(desc.mediaType) || isIndexType(doc.mediaType) || Array.isArray(doc.manifests)) {
      desc = pickPlatform(doc.manifests ?? [], platform, `${what}: index ${desc.digest}`);
      continue;
    }
    if (!doc.config || !Array.isArray(doc.layers)) throw new KrError('corrupt', `${what}: manifest ${desc.digest} has no config or layers`);
    const configBytes = await readBlob(doc.config);
    const config = parseJson<ImageConfigFile>(configBytes, `${what}: config ${doc.config.digest}`);
    for (const l of doc.layers) {
      if (!(await files.exists(blobPath(l.digest)))) throw new KrError('corrupt', `${what}: layer blob ${l.digest} missing`);
    }
    const layers: Layer[] = doc.layers.map((d) => ({
      descriptor: d,
      open: async () => verifying(files.open(blobPath(d.digest)), d.digest, d.size, `${what}: layer ${d.digest}`),
    }));
    return {
      manifest: doc,
      manifestBytes: bytes,
      manifestDigest: desc.digest,
      config,
      configBytes,
      layers,
      close: () => files.close(),
    };
  }
}

function pickByTag(manifests: Descriptor[], tag: string | undefined, what: string): Descriptor {
  if (tag !== undefined) {
    const found = manifests.find((d) => d.annotations?.[REF_NAME] === tag);
    if (!found) {
      const tags = manifests.map((d) => d.annotations?.[REF_NAME]).filter(Boolean);
      throw new KrError('not-found', `${what}: no image tagged ${JSON.stringify(tag)} (has: ${tags.join(', ') || 'no tags'})`);
    }
    return found;
  }
  const digests = new Set(manifests.map((d) => d.digest));
  if (digests.size === 1) return manifests[0];
  if (digests.size === 0) throw new KrError('corrupt', `${what}: index.json lists no images`);
  const tags = manifests.map((d) => d.annotations?.[REF_NAME] ?? d.digest);
  throw new KrError('invalid', `${what}: holds ${digests.size} images, name one by tag: ${tags.join(', ')}`);
}

function pickPlatform(manifests: Descriptor[], want: Platform, what: string): Descriptor {
  const matches = manifests.filter(
    (d) => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture && (!want.variant || d.platform.variant === want.variant),
  );
  if (matches.length > 0) return matches[0];
  if (manifests.length === 1 && !manifests[0].platform) return manifests[0];
  const have = manifests.map((d) => (d.platform ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/') : '?'));
  throw new KrError('not-found', `${what}: no image for ${want.os}/${want.architecture}${want.variant ? '/' + want.variant : ''} (has: ${have.join(', ')})`);
}

/** Writes `image` into the layout at `dir` (created if needed; existing images kept, same tag replaced). */
export async function writeOciLayout(dir: string, image: Image, tag?: string): Promise<Descriptor> {
  const what = `oci layout ${dir}`;
  try {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    if (!(await stat(join(dir, 'oci-layout')).then(() => true, () => false))) {
      await atomicWrite(join(dir, 'oci-layout'), Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    }
    for (const layer of image.layers) {
      const path = join(dir, blobPath(layer.descriptor.digest));
      if (await hasBlob(path, layer.descriptor.size)) continue;
      const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        const src = verifying(await layer.open(), layer.descriptor.digest, layer.descriptor.size, `layer ${layer.descriptor.digest}`);
        await pipeline(src, createWriteStream(tmp, { mode: 0o644 }));
        await rename(tmp, path);
      } catch (err) {
        await unlink(tmp).catch(() => {});
        throw err;
      }
    }
    await writeBlob(dir, image.manifest.config.digest, image.configBytes);
    await writeBlob(dir, image.manifestDigest, image.manifestBytes);

    const desc: Descriptor = {
      mediaType: image.manifest.mediaType ?? MediaType.ociManifest,
      digest: image.manifestDigest,
      size: image.manifestBytes.length,
    };
    if (tag !== undefined) desc.annotations = { [REF_NAME]: tag };
    const indexPath = join(dir, 'index.json');
    const existing = await readFile(indexPath).then((b) => parseJson<Index>(b, `${what}: index.json`), () => null);
    const index: Index = existing ?? { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
    index.manifests = index.manifests.filter((d) =>
      tag !== undefined ? d.annotations?.[REF_NAME] !== tag : !(d.digest === desc.digest && !d.annotations?.[REF_NAME]),
    );
    index.manifests.push(desc);
    await atomicWrite(indexPath, Buffer.from(JSON.stringify(index)));
    return desc;
  } catch (err) {
    throw err instanceof KrError ? new KrError(err.kind, `${what}: ${err.message}`, { cause: err }) : withContext(err, what);
  }
}

async function hasBlob(path: string, size: number): Promise<boolean> {
  return stat(path).then((s) => s.isFile() && s.size === size, () => false);
}

async function writeBlob(dir: string, digest: string, bytes: Buffer): Promise<void> {
  const path = join(dir, blobPath(digest));
  checkBytes(bytes, digest, `blob ${digest}`);
  if (!(await hasBlob(path, bytes.length))) await atomicWrite(path, bytes);
}

async function atomicWrite(path: string, bytes: Buffer): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, bytes, { mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
