// The image service: images in a BlobStore under the data root, their names in the state
// database. An image's identity is its config digest (docker's image ID); records point it at
// the manifest in the store. Blobs land first, records last, so a record never names missing
// blobs; blobs no record reaches are collected (never while a pull or load is storing some).
import { join } from 'node:path';
import { KrError } from '../../util/errors.ts';
import type { ProgressEvent } from '../../util/progress.ts';
import { parseReference, type ImageReference, type InsecureOption } from '../../image/reference.ts';
import { pull } from '../../image/registry/index.ts';
import type { Credentials } from '../../image/registry/index.ts';
import { BlobStore, imageFromStore } from '../../image/store.ts';
import type { Image } from '../../image/types.ts';
import type { StateDb } from '../state/db.ts';
import type { EventService } from '../events/service.ts';
import { ImageRecords, type NewImage } from './records.ts';
import { pullMessages, type JsonMessage } from './json-progress.ts';

export interface ImageServiceOptions {
  insecureRegistries?: InsecureOption;
  /** Where image events (pull, tag, untag, delete, load, save, import) go. */
  events?: EventService;
}

export interface PullRequest {
  fromImage: string;
  tag?: string;
  platform?: string;
  auth?: Credentials;
  signal?: AbortSignal;
  /** Receives docker's JSON progress messages as the pull goes. */
  send: (m: JsonMessage) => void;
}

export interface DeleteItem {
  Untagged?: string;
  Deleted?: string;
}

export const shortHex = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

/** "docker.io/library/alpine:latest" → "alpine:latest"; names docker shows. */
export function familiar(canonical: string): string {
  try {
    return parseReference(canonical).toString();
  } catch {
    return canonical;
  }
}

export class ImageService {
  readonly store: BlobStore;
  readonly records: ImageRecords;
  private readonly opts: ImageServiceOptions;
  private readonly dataRoot: string;
  private busy = 0;
  private gcWanted = false;
  private gcRunning: Promise<void> | undefined;
  /**
   * Images read from the store, by manifest digest: content-addressed, so an entry never goes
   * stale, and every container create reads its image (two blob reads and parses otherwise).
   */
  private readonly parsed = new Map<string, Promise<Image>>();

  private constructor(store: BlobStore, records: ImageRecords, dataRoot: string, opts: ImageServiceOptions) {
    this.store = store;
    this.records = records;
    this.dataRoot = dataRoot;
    this.opts = opts;
  }

  static async open(dataRoot: string, state: StateDb, opts: ImageServiceOptions = {}): Promise<ImageService> {
    const store = await BlobStore.open(join(dataRoot, 'images'));
    const service = new ImageService(store, new ImageRecords(state), dataRoot, opts);
    service.collect(); // what a killed krd left half-stored
    return service;
  }

  get insecureRegistries(): InsecureOption | undefined {
    return this.opts.insecureRegistries;
  }

  /** An image event as dockerd logs it: the image (ID or reference) and a name attribute. */
  event(action: string, id: string, name = id): void {
    this.opts.events?.publish('image', action, id, { name });
  }

  get tmpDir(): string {
    return join(this.store.root, 'tmp');
  }

  /** Runs fn while blobs are being stored: garbage collection waits until none is. */
  async storing<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gcRunning) await this.gcRunning;
    this.busy++;
    try {
      return await fn();
    } finally {
      this.busy--;
      if (this.busy === 0 && this.gcWanted) this.collect();
    }
  }

  /** Records an image whose blobs are all in the store. */
  register(image: Image, source: NewImage['source'], tags: string[], digests: string[] = []): string {
    const id = image.manifest.config.digest;
    const size = image.manifest.layers.reduce((n, l) => n + (l.size || 0), 0);
    this.records.put({ id, manifestDigest: image.manifestDigest, size, created: image.config.created, source }, tags, digests);
    return id;
  }

  /** Resolves a name as docker does: full ID, tag (":latest" implied), name@digest, or a unique ID prefix. */
  resolve(name: string): { id: string; ref?: ImageReference } {
    const full = /^sha256:([a-f0-9]{64})$/.exec(name);
    if (full) {
      if (this.records.get(name)) return { id: name };
      throw new KrError('not-found', `No such image: ${name}`);
    }
    let ref: ImageReference | undefined;
    try {
      ref = parseReference(name);
    } catch {
      ref = undefined;
    }
    if (ref) {
      const id = ref.digest ? this.records.byDigest(`${ref.name}@${ref.digest}`) : this.records.byTag(ref.canonical);
      if (id) return { id, ref };
    }
    if (/^[a-f0-9]{1,64}$/.test(name) && !(ref && name.includes(':'))) {
      const ids = this.records.byPrefix(name);
      if (ids.length === 1) return { id: ids[0] };
      if (ids.length > 1) throw new KrError('invalid', `multiple IDs found with provided prefix: ${name}`);
    }
    throw new KrError('not-found', `No such image: ${ref ? ref.toString() : name}`);
  }

  async image(id: string): Promise<Image> {
    const row = this.records.get(id);
    if (!row) throw new KrError('not-found', `No such image: ${id}`);
    let p = this.parsed.get(row.manifest_digest);
    if (!p) {
      p = imageFromStore(this.store, row.manifest_digest);
      this.parsed.set(row.manifest_digest, p);
      p.catch(() => this.parsed.delete(row.manifest_digest));
    }
    return p;
  }

  /** Pulls fromImage[:tag] and names it; progress goes out as docker's JSON messages. */
  async pull(req: PullRequest): Promise<void> {
    const tag = req.tag ?? '';
    let spec = req.fromImage;
    if (tag) spec = tag.startsWith('sha256:') ? `${spec.replace(/@.*$/, '')}@${tag}` : `${spec.replace(/:[^/:@]*$/, '')}:${tag}`;
    const ref = parseReference(spec);
    const before = ref.digest ? this.records.byDigest(`${ref.name}@${ref.digest}`) : this.records.byTag(ref.canonical);
    let announced = false;
    const translate = pullMessages();
    const progress = (e: ProgressEvent) => {
      if (!announced) {
        announced = true;
        req.send({ status: `Pulling from ${familiarPath(ref)}`, id: ref.tag ?? ref.digest });
      }
      for (const m of translate(e)) req.send(m);
    };
    let image: Image;
    try {
      image = await this.storing(() =>
        pull(ref, {
          store: this.store,
          progress,
          auth: req.auth,
          platform: req.platform || undefined,
          insecure: this.opts.insecureRegistries,
          // The daemon uses only the credentials the client sent (X-Registry-Auth), never a config file.
          env: { DOCKER_CONFIG: join(this.dataRoot, 'no-docker-config') },
          signal: req.signal,
        }),
      );
    } catch (err) {
      throw dockerPullError(err, ref);
    }
    const digestRef = `${ref.name}@${image.manifestDigest}`;
    const id = this.register(image, 'pull', ref.tag !== undefined && !ref.digest ? [ref.canonical] : [], [digestRef]);
    if (!announced) req.send({ status: `Pulling from ${familiarPath(ref)}`, id: ref.tag ?? ref.digest });
    this.event('pull', ref.toString(), ref.familiarName);
    req.send({ status: `Digest: ${image.manifestDigest}` });
    req.send({ status: before === id ? `Status: Image is up to date for ${ref}` : `Status: Downloaded newer image for ${ref}` });
  }

  /** POST /images/{name}/tag: points repo[:tag] at the image. */
  tag(name: string, repo: string, tag: string): void {
    const { id } = this.resolve(name);
    if (!repo) throw new KrError('invalid', 'repository name must have at least one component');
    const target = parseReference(tag ? `${repo}:${tag}` : repo);
    if (target.digest) throw new KrError('invalid', 'refusing to create a tag with a digest reference');
    this.records.put({ ...this.rowAsNew(id) }, [target.canonical], []);
    this.event('tag', id, target.toString());
  }

  private rowAsNew(id: string): NewImage {
    const row = this.records.get(id)!;
    return { id, manifestDigest: row.manifest_digest, size: row.size, created: row.created ?? undefined, source: row.source as NewImage['source'] };
  }

  /** DELETE /images/{name}: untags, and deletes the image once no name is left. */
  remove(name: string, force: boolean): DeleteItem[] {
    const { id } = this.resolve(name);
    const out = this.untagOrDelete(name, force);
    this.deleteEvents(id, out);
    return out;
  }

  /** dockerd's untag/delete events for what a removal did. */
  private deleteEvents(id: string, items: DeleteItem[]): void {
    for (const item of items) {
      if (item.Untagged) this.event('untag', id, item.Untagged);
      if (item.Deleted) this.event('delete', id);
    }
  }

  private untagOrDelete(name: string, force: boolean): DeleteItem[] {
    const { id, ref } = this.resolve(name);
    const out: DeleteItem[] = [];
    if (ref) {
      const tags = this.records.tagsOf(id);
      if (ref.digest) {
        this.records.untagDigest(`${ref.name}@${ref.digest}`);
        out.push({ Untagged: `${ref.familiarName}@${ref.digest}` });
      } else {
        this.records.untag(ref.canonical);
        out.push({ Untagged: ref.toString() });
        // Like dockerd: the last tag of a repository takes that repository's digest references along.
        if (!this.records.tagsOf(id).some((t) => parseReference(t).name === ref.name)) {
          for (const d of this.records.digestsOf(id)) {
            if (parseReference(d).name !== ref.name) continue;
            this.records.untagDigest(d);
            out.push({ Untagged: familiar(d) });
          }
        }
      }
      if (tags.filter((t) => t !== ref.canonical).length > 0) return out;
      if (!force && this.containerUsing(id)) return out;
    } else {
      const repos = new Set(this.records.tagsOf(id).map((t) => parseReference(t).name));
      if (repos.size > 1 && !force) {
        throw new KrError('conflict', `conflict: unable to delete ${shortHex(id)} (must be forced) - image is referenced in multiple repositories`);
      }
    }
    const user = this.containerUsing(id);
    if (user) {
      throw new KrError('conflict', `conflict: unable to delete ${shortHex(id)} (${user.running ? 'cannot be forced' : 'must be forced'}) - image is being used by ${user.running ? 'running' : 'stopped'} container ${shortHex(user.id)}`);
    }
    for (const t of this.records.tagsOf(id)) out.push({ Untagged: familiar(t) });
    for (const d of this.records.digestsOf(id)) out.push({ Untagged: familiar(d) });
    this.records.remove(id);
    out.push({ Deleted: id });
    this.collect();
    return out;
  }

  /** POST /images/prune: images without tags (dangling), or every unused one with dangling=false. */
  async prune(danglingOnly: boolean): Promise<{ ImagesDeleted: DeleteItem[] | null; SpaceReclaimed: number }> {
    const deleted: DeleteItem[] = [];
    let reclaimed = 0;
    for (const row of this.records.all()) {
      if (this.containerUsing(row.id)) continue;
      const tags = this.records.tagsOf(row.id);
      if (danglingOnly && tags.length > 0) continue;
      for (const t of tags) deleted.push({ Untagged: familiar(t) });
      for (const d of this.records.digestsOf(row.id)) deleted.push({ Untagged: familiar(d) });
      this.records.remove(row.id);
      deleted.push({ Deleted: row.id });
      this.deleteEvents(row.id, [{ Deleted: row.id }]);
      reclaimed += row.size;
    }
    if (deleted.length) this.collect();
    if (this.gcRunning) await this.gcRunning;
    return { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  private containerUsing(id: string): { id: string; running: boolean } | undefined {
    return this.records.containerUsing(id);
  }

  /** Removes blobs no image record reaches, once no pull or load is storing blobs. */
  collect(): void {
    if (this.busy > 0 || this.gcRunning) {
      this.gcWanted = true;
      return;
    }
    this.gcWanted = false;
    this.gcRunning = this.syncRefsAndGc()
      .catch(() => {}) // a failed collection leaves extra blobs, never missing ones; the next one retries
      .finally(() => {
        this.gcRunning = undefined;
        if (this.gcWanted && this.busy === 0) this.collect();
      });
  }

  private async syncRefsAndGc(): Promise<void> {
    // The store's refs mirror the records ("image/<manifest digest>"), so its gc keeps exactly their blobs.
    const live = this.records.manifestDigests();
    const have = new Set<string>();
    for (const r of await this.store.listRefs()) {
      const m = /^image\/(sha256:[a-f0-9]{64})$/.exec(r.name);
      if (m && live.has(m[1])) have.add(m[1]);
      else await this.store.deleteRef(r.name);
    }
    for (const d of live) if (!have.has(d)) await this.store.setRef(`image/${d}`, d);
    if (this.busy > 0) return;
    await this.store.gc();
  }
}

/** "library/alpine" for Docker Hub's official images, the repository path otherwise (docker's wording). */
function familiarPath(ref: ImageReference): string {
  return ref.repository;
}

/** docker's messages for pulls that fail before anything was sent. */
function dockerPullError(err: unknown, ref: ImageReference): unknown {
  if (err instanceof KrError && err.kind === 'not-found' && /^image .* not found$/.test(err.message)) {
    return new KrError('not-found', `manifest for ${ref} not found: manifest unknown: manifest unknown`, { cause: err });
  }
  // dockerd answers these with 404 too (a 401 would make the CLI prompt for a login).
  if (err instanceof KrError && (err.kind === 'unauthorized' || err.kind === 'denied')) {
    return new KrError('not-found', `pull access denied for ${ref.familiarName}, repository does not exist or may require 'docker login': ${err.message}`, { cause: err });
  }
  return err;
}
