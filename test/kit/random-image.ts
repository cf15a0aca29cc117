// In-memory images of random content for push/pull tests and benchmarks: gzip tar layers of
// random files, a valid config whose diff_ids match, an OCI (or Docker schema 2) manifest.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { layerTar } from './build-image.ts';
import { writeOciLayout } from '../../src/image/oci-layout.ts';
import { MediaType, type Descriptor, type Image, type ImageConfigFile, type Layer, type Manifest } from '../../src/image/types.ts';

export interface RandomImageOptions {
  layers?: number;
  /** Bytes of random file content per layer (the gzip layer is slightly larger). */
  layerSize?: number;
  /** Manifest flavour: OCI (default) or Docker schema 2. */
  format?: 'oci' | 'docker';
  os?: string;
  architecture?: string;
  variant?: string;
}

const digestOf = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** An Image held in memory; `layers[i].open()` streams its gzip bytes. */
export async function randomImage(opts: RandomImageOptions = {}): Promise<Image> {
  const count = opts.layers ?? 2;
  const size = opts.layerSize ?? 64 << 10;
  const docker = opts.format === 'docker';
  const blobs: Buffer[] = [];
  const diffIds: string[] = [];
  const tag = randomBytes(4).toString('hex');
  for (let i = 0; i < count; i++) {
    // A few files per layer so the tars look like real layers, not one blob.
    const parts = Math.max(1, Math.min(4, Math.floor(size / 1024)));
    const files = Array.from({ length: parts }, (_, j) => ({
      name: `data/${tag}/layer${i}/file${j}.bin`,
      data: randomBytes(Math.floor(size / parts) + (j === 0 ? size % parts : 0)),
    }));
    const tar = layerTar(files.map((f) => ({ type: 'file' as const, path: f.name, content: f.data })));
    diffIds.push(digestOf(tar));
    blobs.push(gzipSync(tar, { level: 1 }));
  }
  const config: ImageConfigFile = {
    architecture: opts.architecture ?? 'amd64',
    os: opts.os ?? 'linux',
    ...(opts.variant ? { variant: opts.variant } : {}),
    created: new Date(1_700_000_000_000).toISOString(),
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created_by: `randomImage layer ${i}` })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const layerType = docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
  const layerDescs: Descriptor[] = blobs.map((b) => ({ mediaType: layerType, digest: digestOf(b), size: b.length }));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.dockerManifest : MediaType.ociManifest,
    config: { mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: digestOf(configBytes), size: configBytes.length },
    layers: layerDescs,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const layers: Layer[] = layerDescs.map((descriptor, i) => ({
    descriptor,
    open: async () => Readable.from([blobs[i]]),
  }));
  return { manifest, manifestDigest: digestOf(manifestBytes), manifestBytes, config, configBytes, layers };
}

/** Writes the image as an OCI image layout directory (oci-layout, index.json, blobs/) tagged `tag`. */
export async function writeOciDir(dir: string, image: Image, tag: string): Promise<void> {
  await writeOciLayout(dir, image, tag);
}

/** The bytes of an image blob (layer or config) by digest, for comparisons in tests. */
export async function blobBytes(image: Image, digest: string): Promise<Buffer> {
  if (digest === image.manifest.config.digest) return image.configBytes;
  const layer = image.layers.find((l) => l.descriptor.digest === digest);
  if (!layer) throw new Error(`no blob ${digest} in image`);
  const chunks: Buffer[] = [];
  for await (const c of await layer.open()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
