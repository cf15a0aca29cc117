// docker save: images → a docker archive tar, as docker 25+ writes it: the blobs under
// blobs/sha256/ (an OCI layout: oci-layout, index.json) plus manifest.json and repositories
// for `docker load`. Layers are written as stored (compressed as pulled); docker load and
// openDockerArchive both decompress them. Streams straight from the store, one blob at a time.
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { MediaType } from '../../image/types.ts';
import { encodeHeader, END_OF_ARCHIVE, padding } from '../../image/tar/tar-writer.ts';
import { parseReference } from '../../image/reference.ts';
import type { ImageService } from './service.ts';

export interface SaveItem {
  id: string;
  /** Canonical tags to record for it (the names the caller asked for). */
  tags: string[];
}

const MTIME = Math.floor(Date.UTC(1970, 0, 1) / 1000);

function header(path: string, size: number, type: 'file' | 'dir' = 'file'): Buffer {
  return encodeHeader({
    path, type, size, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: MTIME,
    linkname: '', devmajor: 0, devminor: 0, xattrs: null,
  });
}

async function put(out: Writable, chunk: Buffer): Promise<void> {
  if (!out.write(chunk)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
  if (out.destroyed) throw new Error('client went away');
}

/** Writes the archive of `items` to out (does not end it on failure). */
export async function writeDockerArchive(svc: ImageService, items: SaveItem[], out: Writable): Promise<void> {
  const written = new Set<string>();
  const manifestJson: object[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const index: object[] = [];
  await put(out, header('blobs/', 0, 'dir'));
  await put(out, header('blobs/sha256/', 0, 'dir'));
  const blob = async (digest: string): Promise<string> => {
    const path = `blobs/sha256/${digest.slice(7)}`;
    if (written.has(digest)) return path;
    written.add(digest);
    const size = await svc.store.size(digest);
    await put(out, header(path, size));
    for await (const chunk of await svc.store.open(digest)) await put(out, chunk as Buffer);
    await put(out, padding(size));
    return path;
  };
  for (const item of items) {
    const image = await svc.image(item.id);
    const layers: string[] = [];
    for (const l of image.manifest.layers) layers.push(await blob(l.digest));
    const config = await blob(image.manifest.config.digest);
    const manifestPath = await blob(image.manifestDigest);
    void manifestPath;
    const familiarTags = item.tags.map((t) => parseReference(t).toString());
    manifestJson.push({ Config: config, RepoTags: familiarTags.length ? familiarTags : null, Layers: layers });
    const top = image.manifest.layers.at(-1)?.digest.slice(7) ?? '';
    for (const t of item.tags) {
      const ref = parseReference(t);
      (repositories[ref.familiarName] ??= {})[ref.tag ?? 'latest'] = top;
    }
    const base = { mediaType: image.manifest.mediaType ?? MediaType.ociManifest, digest: image.manifestDigest, size: image.manifestBytes.length };
    if (item.tags.length === 0) index.push(base);
    for (const t of item.tags) {
      index.push({ ...base, annotations: { 'io.containerd.image.name': t, 'org.opencontainers.image.ref.name': parseReference(t).tag ?? 'latest' } });
    }
  }
  const small = async (path: string, value: unknown) => {
    const bytes = Buffer.from(JSON.stringify(value));
    await put(out, header(path, bytes.length));
    await put(out, bytes);
    await put(out, padding(bytes.length));
  };
  await small('index.json', { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: index });
  await small('manifest.json', manifestJson);
  await small('oci-layout', { imageLayoutVersion: '1.0.0' });
  if (Object.keys(repositories).length) await small('repositories', repositories);
  await put(out, END_OF_ARCHIVE);
}
