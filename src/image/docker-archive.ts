// `docker save` archives: a tar (optionally gzip-compressed) with manifest.json listing, per
// image, its config file, tags and layer files (`<id>/layer.tar` in the old layout,
// `blobs/sha256/<hex>` in the new). Members are read by byte range from the archive; a gzipped
// archive is first decompressed to an unlinked temp file (see tar/archive-file.ts).
//
// Docker archives carry no manifest, so one is built here: an OCI manifest whose layer
// descriptors give each layer file's media type (by its leading bytes), digest and size.
import { createHash } from 'node:crypto';
import { KrError } from '../util/errors.ts';
import { compressionOfBytes } from './layer-stream.ts';
import { sha256Digest, verifying } from './digest-check.ts';
import { ArchiveFile } from './tar/archive-file.ts';
import { MediaType, type Descriptor, type Image, type ImageConfigFile, type Layer, type Manifest } from './types.ts';

export interface DockerArchiveOptions {
  /** Which image of the archive, by one of its RepoTags; default the only/first one. */
  tag?: string;
  /** Where a gzipped archive is decompressed to (default os.tmpdir()). */
  tmpDir?: string;
}

export interface DockerArchiveImage extends Image {
  readonly repoTags: readonly string[];
  /** Releases the archive file; layers cannot be read afterwards. */
  close(): Promise<void>;
}

interface ManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

const LAYER_MEDIA_TYPE = { gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd, none: MediaType.ociLayer } as const;

/** Opens one image of a docker archive. */
export async function openDockerArchive(path: string, opts: DockerArchiveOptions = {}): Promise<DockerArchiveImage> {
  const archive = await ArchiveFile.open(path, opts.tmpDir);
  try {
    return await readImage(archive, opts.tag);
  } catch (err) {
    await archive.close();
    throw err;
  }
}

/** The RepoTags of every image in a docker archive (one array per image). */
export async function listDockerArchive(path: string, tmpDir?: string): Promise<string[][]> {
  const archive = await ArchiveFile.open(path, tmpDir);
  try {
    return (await readManifestJson(archive)).map((e) => e.RepoTags ?? []);
  } finally {
    await archive.close();
  }
}

async function readManifestJson(archive: ArchiveFile): Promise<ManifestEntry[]> {
  const what = `docker archive ${archive.path}`;
  const bytes = await archive.read('manifest.json');
  if (bytes === null) throw new KrError('corrupt', `${what}: manifest.json missing`);
  let entries: ManifestEntry[];
  try {
    entries = JSON.parse(bytes.toString('utf8')) as ManifestEntry[];
  } catch {
    throw new KrError('corrupt', `${what}: manifest.json is not valid JSON`);
  }
  const valid = Array.isArray(entries) && entries.every((e) => e && typeof e.Config === 'string' && Array.isArray(e.Layers));
  if (!valid || entries.length === 0) throw new KrError('corrupt', `${what}: manifest.json lists no images`);
  return entries;
}

/** Docker writes "name:tag" for Docker Hub images without the docker.io/library/ prefix. */
function tagMatches(repoTag: string, want: string): boolean {
  const short = (t: string) => t.replace(/^(docker\.io|index\.docker\.io)\//, '').replace(/^library\//, '');
  const withTag = (t: string) => (/:[^/]+$/.test(t) ? t : `${t}:latest`);
  return repoTag === want || short(repoTag) === short(withTag(want));
}

async function readImage(archive: ArchiveFile, tag: string | undefined): Promise<DockerArchiveImage> {
  const what = `docker archive ${archive.path}`;
  const entries = await readManifestJson(archive);
  let entry = entries[0];
  if (tag !== undefined) {
    const found = entries.find((e) => (e.RepoTags ?? []).some((t) => tagMatches(t, tag)));
    if (!found) {
      const all = entries.flatMap((e) => e.RepoTags ?? []);
      throw new KrError('not-found', `${what}: no image tagged ${tag} (has: ${all.join(', ') || 'no tags'})`);
    }
    entry = found;
  }

  const configBytes = await archive.read(entry.Config);
  if (configBytes === null) throw new KrError('corrupt', `${what}: config ${entry.Config} missing`);
  let config: ImageConfigFile;
  try {
    config = JSON.parse(configBytes.toString('utf8')) as ImageConfigFile;
  } catch {
    throw new KrError('corrupt', `${what}: config ${entry.Config} is not valid JSON`);
  }
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== entry.Layers.length) {
    throw new KrError('corrupt', `${what}: config lists ${diffIds.length} layers, manifest.json ${entry.Layers.length}`);
  }

  const layers: Layer[] = [];
  const descriptors: Descriptor[] = [];
  for (let i = 0; i < entry.Layers.length; i++) {
    const name = entry.Layers[i];
    const member = archive.entry(name);
    if (!member) throw new KrError('corrupt', `${what}: layer ${name} missing`);
    const kind = compressionOfBytes(await archive.head(name, 4));
    const descriptor: Descriptor = {
      mediaType: LAYER_MEDIA_TYPE[kind],
      digest: await layerDigest(archive, name, kind, diffIds[i]),
      size: member.header.size,
    };
    descriptors.push(descriptor);
    layers.push({
      descriptor,
      open: async () => verifying(archive.openMember(name), descriptor.digest, descriptor.size, `${what}: layer ${name}`),
    });
  }

  const configDescriptor: Descriptor = { mediaType: MediaType.ociConfig, digest: sha256Digest(configBytes), size: configBytes.length };
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDescriptor, layers: descriptors };
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  return {
    manifest,
    manifestBytes,
    manifestDigest: sha256Digest(manifestBytes),
    config,
    configBytes,
    layers,
    repoTags: entry.RepoTags ?? [],
    close: () => archive.close(),
  };
}

/**
 * The digest of a layer file. Cheap where the archive already names it: new-style members are
 * named by their digest, and an uncompressed layer's digest is its diff_id. Those are checked
 * when the layer is read; anything else (a gzipped old-style layer.tar) is hashed now.
 */
async function layerDigest(archive: ArchiveFile, name: string, kind: string, diffId: string): Promise<string> {
  const m = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
  if (m) return `sha256:${m[1]}`;
  if (kind === 'none' && /^sha256:[a-f0-9]{64}$/.test(diffId)) return diffId;
  const hash = createHash('sha256');
  for await (const chunk of archive.openMember(name)) hash.update(chunk as Buffer);
  return 'sha256:' + hash.digest('hex');
}

/** JSON with object keys sorted and no whitespace: one byte form per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
