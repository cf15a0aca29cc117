// A container's own files as docker shows and keeps them: docker diff (its changes against its
// image), docker export (image and changes as one tar) and docker commit (the changes as a new
// image). The runtime reads them (ns: the overlay's upper dir; vm: the pod's vdocker does the
// same inside the guest).
import type { Readable, Writable } from 'node:stream';
import { flatten } from '../../image/flatten.ts';
import { KrError } from '../../util/errors.ts';
import { changesJson } from '../../runtime/archive/upper-layer.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import { MediaType, type ContainerConfig, type Layer } from '../../image/types.ts';
import { commitImage } from '../images/commit.ts';
import type { ImageService } from '../images/service.ts';
import { commandOf } from './config.ts';
import type { ContainerService } from './service.ts';

export interface CommitOptions {
  /** repo and tag as docker sends them (POST /commit?repo=&tag=). */
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  /** Freeze the container while its layer is read (docker's default). */
  pause: boolean;
  changes: string[];
  /** The request body: a Config whose set fields win over the container's. */
  config: unknown;
}

export class ContainerLayers {
  private readonly containers: ContainerService;
  private readonly runtime: Runtime;
  private readonly images: ImageService | null;

  constructor(containers: ContainerService, runtime: Runtime, images: ImageService | null = null) {
    this.containers = containers;
    this.runtime = runtime;
    this.images = images;
  }

  async changes(ref: string): Promise<{ Path: string; Kind: number }[]> {
    const r = this.containers.resolve(ref);
    return changesJson(await (await this.runtime.reattach(r.id)).changes());
  }

  /** The layer tar itself (vdocker serves it to the host's vm runtime for a commit). */
  async layer(ref: string): Promise<Readable> {
    const r = this.containers.resolve(ref);
    return (await this.runtime.reattach(r.id)).layer();
  }

  /**
   * docker export: the container's whole filesystem (its image's layers, then its own) as one
   * tar, without what is mounted into it; flattened as an image is for the runtime.
   */
  async export(ref: string, out: Writable): Promise<void> {
    if (!this.images) throw new KrError('unavailable', 'containers cannot be exported here');
    const r = this.containers.resolve(ref);
    const parent = await this.images.image(r.image_id);
    const c = await this.runtime.reattach(r.id);
    const own: Layer = { descriptor: { mediaType: MediaType.ociLayer, digest: `sha256:${'0'.repeat(64)}`, size: 0 }, open: () => c.layer() };
    await flatten({ ...parent, layers: [...parent.layers, own] }, out, { configHeader: false, tmpDir: this.images.tmpDir });
    this.containers.event(r, 'export');
  }

  async commit(ref: string, o: CommitOptions): Promise<{ Id: string }> {
    if (!this.images) throw new KrError('unavailable', 'images cannot be committed here');
    const r = this.containers.resolve(ref);
    if (o.config !== undefined && o.config !== null && (typeof o.config !== 'object' || Array.isArray(o.config))) throw new KrError('invalid', 'the commit body must be a container Config object');
    if (o.tag && !o.repo) throw new KrError('invalid', 'a tag needs a repository name (repo)');
    const reference = o.repo ? `${o.repo}${o.tag ? `:${o.tag}` : ''}` : undefined;
    const parent = await this.images.image(r.image_id);
    const c = await this.runtime.reattach(r.id);
    const freeze = o.pause && r.state === 'running';
    if (freeze) await c.pause();
    try {
      const set = (o: object) => Object.entries(o).filter(([, v]) => v !== null && v !== undefined);
      const config = Object.fromEntries([...set(r.config), ...set(o.config ?? {})]) as ContainerConfig;
      const id = await commitImage(this.images, { parent, config, changes: o.changes, layer: await c.layer(), reference, comment: o.comment, author: o.author, createdBy: commandOf(r.config).join(' ') });
      this.containers.event(r, 'commit', o.comment ? { comment: o.comment } : {});
      return { Id: id };
    } finally {
      if (freeze) await c.resume();
    }
  }
}
