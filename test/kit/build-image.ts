// Test images from declarative layer specs, written as an OCI layout and as a docker archive.
// The standard image (buildTestImage) is a busybox-static rootfs plus layers that exercise
// whiteouts, opaque dirs, hardlinks to lower files, replaced files/dirs, devices, xattrs...
// Used by tests and benchmarks; `extraBytes` adds layers of random, incompressible files.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { TarHeader } from '../../src/image/tar/tar-header.ts';
import { END_OF_ARCHIVE, encodeHeader, padding } from '../../src/image/tar/tar-writer.ts';
import { writeOciLayout } from '../../src/image/oci-layout.ts';
import { MediaType, type ContainerConfig, type Descriptor, type Image, type ImageConfigFile, type Layer, type Manifest } from '../../src/image/types.ts';

interface Common {
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: number;
  xattrs?: Record<string, Buffer | string>;
}

export type EntrySpec =
  | (Common & { type: 'dir' })
  | (Common & { type: 'file'; content: Buffer | string })
  | (Common & { type: 'symlink'; target: string })
  | (Common & { type: 'link'; target: string })
  | (Common & { type: 'char' | 'block'; major: number; minor: number })
  | (Common & { type: 'fifo' })
  /** `.wh.<basename>` next to path: deletes path from lower layers. */
  | { type: 'whiteout'; path: string }
  /** `<path>/.wh..wh..opq`: hides lower content of directory path. */
  | { type: 'opaque'; path: string };

export interface LayerSpec {
  entries: EntrySpec[];
  compression?: 'gzip' | 'none';
}

export const MTIME = 1_700_000_000;

/** The uncompressed tar of one layer spec (paths written exactly as given). */
export function layerTar(entries: EntrySpec[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.type === 'whiteout' || e.type === 'opaque') {
      const slash = e.path.lastIndexOf('/');
      const path = e.type === 'opaque' ? `${e.path}/.wh..wh..opq` : `${e.path.slice(0, slash + 1)}.wh.${e.path.slice(slash + 1)}`;
      parts.push(encodeHeader(header({ path, type: 'file', content: '' })));
      continue;
    }
    const data = e.type === 'file' ? (typeof e.content === 'string' ? Buffer.from(e.content) : e.content) : null;
    parts.push(encodeHeader(header(e)));
    if (data) parts.push(data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

function header(e: Exclude<EntrySpec, { type: 'whiteout' | 'opaque' }>): TarHeader {
  const xattrs = e.xattrs ? new Map(Object.entries(e.xattrs).map(([k, v]) => [k, Buffer.from(v)])) : null;
  const isDev = e.type === 'char' || e.type === 'block';
  return {
    path: e.path,
    type: e.type,
    mode: e.mode ?? (e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644),
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    uname: e.uname ?? (e.uid ? '' : 'root'),
    gname: e.gname ?? (e.gid ? '' : 'root'),
    mtime: e.mtime ?? MTIME,
    size: e.type === 'file' ? Buffer.byteLength(e.content) : 0,
    linkname: e.type === 'symlink' || e.type === 'link' ? e.target : '',
    devmajor: isDev ? e.major : 0,
    devminor: isDev ? e.minor : 0,
    xattrs,
  };
}

const sha256 = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

export interface BuiltImage {
  image: Image;
  /** OCI layout directory and the tag the image has there. */
  layoutDir: string;
  tag: string;
  /** `docker save`-style archive of the same image (uncompressed layer.tar files). */
  dockerArchive: string;
  /** Uncompressed layer tars, bottom first. */
  diffs: Buffer[];
}

export async function buildImage(dir: string, layers: LayerSpec[], opts: { tag?: string; config?: ContainerConfig } = {}): Promise<BuiltImage> {
  const tag = opts.tag ?? 'latest';
  const diffs = layers.map((l) => layerTar(l.entries));
  const blobs = layers.map((l, i) => (l.compression === 'none' ? diffs[i] : gzipSync(diffs[i], { level: 1 })));
  const config: ImageConfigFile = {
    architecture: 'amd64',
    os: 'linux',
    created: new Date(MTIME * 1000).toISOString(),
    config: opts.config ?? {
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: ['echo hello from kraud'],
      Env: ['PATH=/usr/bin:/bin', 'KRAUD=1'],
      WorkingDir: '/home/user',
      User: '1000:1000',
      ExposedPorts: { '8080/tcp': {} },
      Volumes: { '/data': {} },
      Labels: { 'org.example.kit': 'build-image' },
      StopSignal: 'SIGTERM',
    },
    rootfs: { type: 'layers', diff_ids: diffs.map(sha256) },
    history: layers.map(() => ({ created: new Date(MTIME * 1000).toISOString(), created_by: 'test/kit/build-image.ts' })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const descriptors: Descriptor[] = blobs.map((b, i) => ({
    mediaType: layers[i].compression === 'none' ? MediaType.ociLayer : MediaType.ociLayerGzip,
    digest: sha256(b),
    size: b.length,
  }));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256(configBytes), size: configBytes.length },
    layers: descriptors,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const imageLayers: Layer[] = descriptors.map((d, i) => ({ descriptor: d, open: async () => Readable.from([blobs[i]]) }));
  const image: Image = { manifest, manifestBytes, manifestDigest: sha256(manifestBytes), config, configBytes, layers: imageLayers };

  const layoutDir = join(dir, 'oci');
  await writeOciLayout(layoutDir, image, tag);
  const dockerArchive = join(dir, 'image.docker.tar');
  await writeFile(dockerArchive, dockerArchiveOf(config, configBytes, diffs, `kraud-test:${tag}`));
  return { image, layoutDir, tag, dockerArchive, diffs };
}

/** A docker-save archive in the classic layout: manifest.json, <hex>.json, <n>/layer.tar. */
export function dockerArchiveOf(_config: ImageConfigFile, configBytes: Buffer, diffs: Buffer[], repoTag: string): Buffer {
  const configName = `${sha256(configBytes).slice(7)}.json`;
  const layerNames = diffs.map((d) => `${sha256(d).slice(7)}/layer.tar`);
  const manifest = [{ Config: configName, RepoTags: [repoTag], Layers: layerNames }];
  const entries: EntrySpec[] = [{ type: 'file', path: configName, content: configBytes }];
  diffs.forEach((d, i) => {
    entries.push({ type: 'dir', path: layerNames[i].split('/')[0] + '/' });
    entries.push({ type: 'file', path: layerNames[i], content: d });
  });
  entries.push({ type: 'file', path: 'manifest.json', content: JSON.stringify(manifest) });
  return layerTar(entries);
}

/**
 * The root of a busybox-static test image: /bin/busybox with a symlink per applet and, unless
 * `users` is false, /etc/passwd and /etc/group with root and `user` (1000:1000).
 */
export function busyboxRoot(applets: string[], opts: { users?: boolean } = {}): EntrySpec[] {
  const entries: EntrySpec[] = [
    { type: 'dir', path: './' },
    { type: 'dir', path: 'bin/' },
    { type: 'file', path: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    ...applets.map((a): EntrySpec => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
  ];
  if (opts.users === false) return entries;
  return [
    ...entries,
    { type: 'dir', path: 'etc/' },
    { type: 'file', path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' },
    { type: 'file', path: 'etc/group', content: 'root:x:0:\nuser:x:1000:\n' },
  ];
}

/** The standard layers: busybox rootfs, then changes of every kind the flattener handles. */
export function standardLayers(): LayerSpec[] {
  const base: EntrySpec[] = [
    ...busyboxRoot(['sh', 'ls', 'cat', 'echo', 'true', 'false', 'mkdir', 'rm', 'id', 'env']),
    { type: 'file', path: 'etc/shadow', content: 'root:*:19000:0:99999:7:::\n', mode: 0o640, gid: 42, gname: 'shadow' },
    { type: 'file', path: 'etc/to-replace', content: 'old content\n' },
    { type: 'file', path: 'etc/file-to-dir', content: 'I become a directory\n' },
    { type: 'file', path: 'etc/hard-a', content: 'shared by a hardlink group\n', mode: 0o600 },
    { type: 'link', path: 'etc/hard-b', target: 'etc/hard-a' },
    { type: 'file', path: 'etc/xattrs', content: 'has xattrs\n', xattrs: { 'user.kraud': 'hello', 'user.binary': Buffer.from([0, 0xff, 0x80, 0x0a]) } },
    { type: 'dir', path: 'tmp/', mode: 0o1777 },
    { type: 'dir', path: 'root/', mode: 0o700 },
    { type: 'dir', path: 'home/' },
    { type: 'dir', path: 'home/user/', mode: 0o750, uid: 1000, gid: 1000, uname: 'user', gname: 'user' },
    { type: 'file', path: 'home/user/notes.txt', content: 'mine\n', uid: 1000, gid: 1000, uname: 'user', gname: 'user' },
    { type: 'file', path: 'home/user/keep.txt', content: 'kept\n', uid: 1000, gid: 1000, mode: 0o400 },
    { type: 'dir', path: 'usr/' },
    { type: 'dir', path: 'usr/bin/' },
    { type: 'file', path: 'usr/bin/suid', content: '#!/bin/sh\n', mode: 0o4755 },
    { type: 'file', path: 'usr/bin/sgid', content: '#!/bin/sh\n', mode: 0o2711, gid: 50 },
    { type: 'dir', path: 'dev/' },
    { type: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'block', path: 'dev/loop0', major: 7, minor: 0, mode: 0o660, gid: 6 },
    { type: 'dir', path: 'run/' },
    { type: 'fifo', path: 'run/fifo', mode: 0o620 },
    { type: 'dir', path: 'var/' },
    { type: 'dir', path: 'var/cache/' },
    { type: 'file', path: 'var/cache/x', content: 'x' },
    { type: 'file', path: 'var/cache/y', content: 'y' },
    { type: 'dir', path: 'var/lib/' },
    { type: 'dir', path: 'var/lib/data/', mode: 0o700 },
    { type: 'file', path: 'var/lib/data/a', content: 'a' },
    { type: 'dir', path: 'var/lib/data/sub/' },
    { type: 'file', path: 'var/lib/data/sub/c', content: 'c' },
    { type: 'dir', path: 'lib-dir/' },
    { type: 'file', path: 'lib-dir/old', content: 'under a dir that becomes a symlink' },
    { type: 'dir', path: 'opt/' },
    { type: 'file', path: 'opt/tool', content: 'under a dir that becomes a file' },
    { type: 'file', path: 'deleted-dir-sibling', content: 'z' },
    { type: 'dir', path: 'gone/' },
    { type: 'dir', path: 'gone/deep/' },
    { type: 'file', path: 'gone/deep/file', content: 'deleted with its parent' },
  ];
  const changes: EntrySpec[] = [
    { type: 'whiteout', path: 'var/cache/x' },
    { type: 'whiteout', path: 'gone' },
    { type: 'opaque', path: 'var/lib/data' },
    { type: 'dir', path: 'var/lib/data/', mode: 0o750 },
    { type: 'file', path: 'var/lib/data/new', content: 'only me after the opaque marker' },
    { type: 'link', path: 'usr/bin/ls-hardlink', target: 'bin/busybox' },
    { type: 'file', path: 'etc/to-replace', content: 'new content\n', mode: 0o600 },
    { type: 'dir', path: 'usr/lib/' },
    { type: 'symlink', path: 'lib-dir', target: 'usr/lib' },
    { type: 'dir', path: 'etc/file-to-dir/', mode: 0o711 },
    { type: 'file', path: 'etc/file-to-dir/inner', content: 'inside' },
    { type: 'whiteout', path: 'home/user/notes.txt' },
    { type: 'file', path: 'etc/motd', content: 'layer two\n' },
  ];
  const more: EntrySpec[] = [
    { type: 'whiteout', path: 'etc/hard-a' },
    { type: 'file', path: 'opt', content: 'a file where a directory was\n' },
    { type: 'file', path: 'var/cache/z', content: 'z' },
    { type: 'link', path: 'etc/motd-link', target: 'etc/motd' },
    { type: 'dir', path: 'var/log/', mode: 0o2775, gid: 4 },
    { type: 'symlink', path: 'var/run', target: '../run' },
    { type: 'file', path: 'etc/xattrs', content: 'replaced, new xattrs\n', xattrs: { 'user.second': 'two', 'user.bin': Buffer.from([0, 0xff, 0x80, 0x0a, 0x3d]) } },
  ];
  return [
    { entries: base, compression: 'gzip' },
    { entries: changes, compression: 'none' },
    { entries: more, compression: 'gzip' },
  ];
}

/** Layers of random (incompressible) files adding up to about `bytes`. */
export function extraLayers(bytes: number, layerCount = 4): LayerSpec[] {
  const out: LayerSpec[] = [];
  const perLayer = Math.ceil(bytes / layerCount);
  for (let l = 0; l < layerCount; l++) {
    const entries: EntrySpec[] = [{ type: 'dir', path: 'data/' }, { type: 'dir', path: `data/l${l}/` }];
    let left = perLayer;
    for (let i = 0; left > 0; i++) {
      // Mostly small files (like real rootfs trees), a few big ones carrying most bytes.
      const size = Math.min(left, i % 50 === 49 ? 4 * 1024 * 1024 : 4096 + ((i * 7919) % 16384));
      entries.push({ type: 'file', path: `data/l${l}/f${i}`, content: randomBytes(size) });
      left -= size;
    }
    out.push({ entries, compression: 'gzip' });
  }
  return out;
}

/** The standard test image (plus `extraBytes` of random content) in `dir`. */
export async function buildTestImage(dir: string, opts: { extraBytes?: number; tag?: string } = {}): Promise<BuiltImage> {
  await mkdir(dir, { recursive: true });
  const layers = [...standardLayers(), ...(opts.extraBytes ? extraLayers(opts.extraBytes) : [])];
  return buildImage(dir, layers, { tag: opts.tag });
}
