// One entry point for "an image, from wherever it lives": a registry reference, a docker
// archive (`docker save`, plain or gzip), or an OCI layout (directory or tarball).
// Explicit transports like skopeo's are accepted too: `oci:PATH[:TAG]`,
// `docker-archive:PATH[:TAG]`, `docker://REF`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KrError } from '../util/errors.ts';
import type { ProgressSink } from '../util/progress.ts';
import { openDockerArchive } from './docker-archive.ts';
import { openOciLayout } from './oci-layout.ts';
import { ArchiveFile } from './tar/archive-file.ts';
import type { Image } from './types.ts';

export interface SourceOptions {
  /** "os/arch[/variant]"; default linux/amd64. */
  platform?: string;
  /** Use plain HTTP / skip TLS checks for non-loopback registries. */
  insecure?: boolean;
  progress?: ProgressSink;
  /** Content store for registry pulls; default $KRAUD_STORE or ~/.cache/kraud/store. */
  storeDir?: string;
}

export type OpenedImage = Image & { close(): Promise<void> };

export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KRAUD_STORE) return env.KRAUD_STORE;
  const cache = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(cache, 'kraud', 'store');
}

/** Splits "PATH:TAG" when PATH exists on its own (tags cannot contain "/"). */
function splitPathTag(spec: string): { file: string; tag?: string } {
  if (fs.existsSync(spec)) return { file: spec };
  const colon = spec.lastIndexOf(':');
  if (colon > 0 && !spec.slice(colon + 1).includes('/') && fs.existsSync(spec.slice(0, colon))) {
    return { file: spec.slice(0, colon), tag: spec.slice(colon + 1) };
  }
  return { file: spec };
}

function looksLikePath(spec: string): boolean {
  return /^(\/|\.\.?\/|~\/)/.test(spec) || /\.(tar|tar\.gz|tgz)$/.test(spec);
}

async function openFile(spec: string, kind: 'oci' | 'docker-archive' | 'auto', opts: SourceOptions): Promise<OpenedImage> {
  const { file, tag } = splitPathTag(spec);
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) throw new KrError('not-found', `${file}: no such file or directory`);
  if (kind === 'oci' || st.isDirectory()) return openOciLayout(file, { tag, platform: opts.platform });
  if (kind === 'docker-archive') return openDockerArchive(file, { tag });
  // A tarball: docker's manifest.json wins (docker 25+ writes both it and an OCI layout).
  const archive = await ArchiveFile.open(file);
  let hasManifest: boolean;
  let hasLayout: boolean;
  try {
    hasManifest = (await archive.read('manifest.json')) !== null;
    hasLayout = (await archive.read('oci-layout')) !== null;
  } finally {
    await archive.close();
  }
  if (hasManifest) return openDockerArchive(file, { tag });
  if (hasLayout) return openOciLayout(file, { tag, platform: opts.platform });
  throw new KrError('corrupt', `${file}: neither a docker archive (no manifest.json) nor an OCI layout (no oci-layout)`);
}

export async function openImageSource(spec: string, opts: SourceOptions = {}): Promise<OpenedImage> {
  if (spec.startsWith('oci:')) return openFile(spec.slice(4), 'oci', opts);
  if (spec.startsWith('docker-archive:')) return openFile(spec.slice('docker-archive:'.length), 'docker-archive', opts);
  let ref = spec;
  if (spec.startsWith('docker://')) ref = spec.slice('docker://'.length);
  else if (fs.existsSync(splitPathTag(spec).file) || looksLikePath(spec)) return openFile(spec, 'auto', opts);
  const { pullImage } = await import('./registry/pull.ts');
  const { BlobStore } = await import('./store.ts');
  const store = await BlobStore.open(opts.storeDir ?? defaultStoreDir());
  const image = await pullImage(ref, { store, platform: opts.platform, insecure: opts.insecure, progress: opts.progress });
  return Object.assign(image, { close: async () => {} });
}
