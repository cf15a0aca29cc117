// docker commit: a new image made of the container's image and one more layer, the container's
// changes (Runtime.layer()), with the container's config as the image's, then the caller's
// Config and --change instructions (Dockerfile lines: CMD, ENV, EXPOSE, …) applied over it.
import type { Readable } from 'node:stream';
import { canonicalJson } from '../../image/docker-archive.ts';
import { parseReference } from '../../image/reference.ts';
import { imageFromStore } from '../../image/store.ts';
import { MediaType, type ContainerConfig, type Image, type ImageConfigFile, type Manifest } from '../../image/types.ts';
import { parseDockerfile } from '../../build/dockerfile/parse.ts';
import { applyConfig, DEFAULT_SHELL, type ConfigState } from '../../build/image-config.ts';
import { KrError } from '../../util/errors.ts';
import { envMap } from '../../image/container-env.ts';
import type { ImageService } from './service.ts';

/** What of a container's config an image keeps (the rest is about one run: tty, stdin, hostname). */
const IMAGE_FIELDS = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'Healthcheck'] as const;

export interface CommitRequest {
  parent: Image;
  /** The container's config, then the body's Config over it (docker's merge: set fields win). */
  config: ContainerConfig;
  /** Dockerfile instructions, one per --change. */
  changes: string[];
  layer: Readable;
  /** The image's name (repo[:tag]); none: an untagged image. */
  reference?: string;
  comment?: string;
  author?: string;
  /** What history says made the layer (the container's command). */
  createdBy: string;
}

const CHANGEABLE = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'MAINTAINER']);

/** The --change lines applied to config, as docker does (only config instructions; a 400 naming a bad one). */
export function applyChanges(config: ContainerConfig, changes: string[]): ContainerConfig {
  const state: ConfigState = { config: structuredClone(config), shell: DEFAULT_SHELL, cmdFromBase: true };
  const env = envMap(config.Env ?? []);
  for (const line of changes) {
    const word = line.trim().split(/\s+/)[0]?.toUpperCase() ?? '';
    if (!CHANGEABLE.has(word)) throw new KrError('invalid', `${word || 'an empty line'} is not a valid change command`);
    if (word === 'ONBUILD') continue; // kept by docker for builds on top; krd's builder has no ONBUILD
    const inst = parseDockerfile(`FROM scratch\n${line}\n`, { file: '--change' }).instructions[1];
    if (inst.kind === 'ENV') for (const p of inst.pairs) env.set(p.key, p.value);
    applyConfig(state, inst, env);
  }
  return state.config;
}

/** Stores the layer, config and manifest; registers the image (tagged when asked); its ID. */
export async function commitImage(svc: ImageService, req: CommitRequest): Promise<string> {
  const tags = req.reference ? [parseReference(req.reference).canonical] : [];
  const config: ContainerConfig = {};
  for (const k of IMAGE_FIELDS) if (req.config[k] !== undefined) (config as Record<string, unknown>)[k] = req.config[k];
  const finalConfig = applyChanges(config, req.changes);
  return svc.storing(async () => {
    const staged = await svc.store.stage(req.layer);
    try {
      const now = new Date().toISOString();
      const parent = req.parent.config;
      const file: ImageConfigFile = {
        ...parent,
        created: now,
        ...(req.author ? { author: req.author } : {}),
        comment: req.comment ?? '',
        config: finalConfig,
        rootfs: { type: 'layers', diff_ids: [...parent.rootfs.diff_ids, staged.digest] },
        history: [...(parent.history ?? []), { created: now, created_by: req.createdBy, ...(req.author ? { author: req.author } : {}), ...(req.comment ? { comment: req.comment } : {}) }],
      };
      const configBytes = Buffer.from(canonicalJson(file));
      const configDigest = await svc.store.putBytes(configBytes);
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configBytes.length },
        layers: [...req.parent.manifest.layers, { mediaType: MediaType.ociLayer, digest: staged.digest, size: staged.size }],
      };
      await staged.commit();
      const manifestDigest = await svc.store.putBytes(Buffer.from(canonicalJson(manifest)));
      return svc.register(await imageFromStore(svc.store, manifestDigest), 'commit', tags);
    } catch (err) {
      await staged.discard().catch(() => undefined);
      throw err;
    }
  });
}
