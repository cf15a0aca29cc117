// The shapes docker's API returns for images: list entries, inspect, history.
import { KrError } from '../../util/errors.ts';
import type { ImageConfigFile } from '../../image/types.ts';
import { parseReference } from '../../image/reference.ts';
import { familiar, type ImageService } from './service.ts';

const unix = (iso: string | null | undefined): number => {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? Math.floor(t / 1000) : 0;
};

async function configOf(svc: ImageService, id: string): Promise<ImageConfigFile> {
  try {
    return JSON.parse((await svc.store.readBytes(id)).toString('utf8')) as ImageConfigFile;
  } catch (err) {
    if (err instanceof KrError) throw err;
    throw new KrError('corrupt', `image config ${id} in store is not JSON`);
  }
}

/** docker's path.Match on familiar names: "*" stays within one path component. */
function globMatch(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`).test(value);
}

/** The names among `refs` (canonical) that a reference filter's patterns match. */
function referenceMatches(patterns: string[], refs: string[]): string[] {
  return refs.filter((canonical) => {
    const ref = parseReference(canonical);
    const names = [ref.familiarName, ref.toString()];
    return patterns.some((p) => names.some((n) => globMatch(p, n)));
  });
}

/** GET /images/json */
export async function listImages(svc: ImageService, filters: Map<string, string[]>): Promise<object[]> {
  for (const key of filters.keys()) {
    if (!['reference', 'dangling', 'label', 'before', 'since'].includes(key)) throw new KrError('invalid', `invalid filter '${key}'`);
  }
  const dangling = filters.get('dangling');
  if (dangling && dangling.some((v) => !['true', 'false', '1', '0'].includes(v))) throw new KrError('invalid', `invalid filter 'dangling=${dangling[0]}'`);
  const out: object[] = [];
  for (const row of svc.records.all()) {
    let tags = svc.records.tagsOf(row.id);
    let digests = svc.records.digestsOf(row.id);
    if (dangling && dangling.length) {
      const want = dangling[0] === 'true' || dangling[0] === '1';
      if (want !== (tags.length === 0)) continue;
    }
    const refs = filters.get('reference');
    if (refs && refs.length) {
      // docker lists only the names that matched.
      tags = referenceMatches(refs, tags);
      digests = referenceMatches(refs, digests);
      if (tags.length === 0 && digests.length === 0) continue;
    }
    const config = await configOf(svc, row.id).catch(() => undefined);
    const labels = config?.config?.Labels ?? {};
    const want = filters.get('label') ?? [];
    if (!want.every((l) => (l.includes('=') ? labels[l.slice(0, l.indexOf('='))] === l.slice(l.indexOf('=') + 1) : l in labels))) continue;
    out.push({
      Containers: -1,
      Created: unix(row.created),
      Id: row.id,
      Labels: labels,
      ParentId: '',
      RepoDigests: digests.map(familiar),
      RepoTags: tags.map(familiar),
      SharedSize: -1,
      Size: row.size,
    });
  }
  return out;
}

/** GET /images/{name}/json */
export async function inspectImage(svc: ImageService, name: string): Promise<object> {
  const { id } = svc.resolve(name);
  const row = svc.records.get(id)!;
  const config = await configOf(svc, id);
  const last = svc.records.lastTagTime(id);
  return {
    Id: id,
    RepoTags: svc.records.tagsOf(id).map(familiar),
    RepoDigests: svc.records.digestsOf(id).map(familiar),
    Parent: '',
    Comment: typeof config.comment === 'string' ? config.comment : '',
    Created: config.created ?? '',
    DockerVersion: typeof config.docker_version === 'string' ? config.docker_version : '',
    Author: config.author ?? '',
    Config: config.config ?? {},
    Architecture: config.architecture,
    ...(config.variant ? { Variant: config.variant } : {}),
    Os: config.os,
    Size: row.size,
    GraphDriver: { Name: 'overlayfs', Data: null },
    RootFS: { Type: 'layers', Layers: config.rootfs?.diff_ids ?? [] },
    Metadata: { LastTagTime: last ? new Date(last).toISOString() : '0001-01-01T00:00:00Z' },
  };
}

/** GET /images/{name}/history: newest step first, sizes of the layers the steps made. */
export async function imageHistory(svc: ImageService, name: string): Promise<object[]> {
  const { id } = svc.resolve(name);
  const config = await configOf(svc, id);
  const image = await svc.image(id);
  const layers = image.manifest.layers;
  const history = config.history?.length ? config.history : layers.map(() => ({}) as NonNullable<ImageConfigFile['history']>[number]);
  let layer = 0;
  const rows = history.map((h) => ({
    Id: '<missing>',
    Created: unix(h.created),
    CreatedBy: h.created_by ?? '',
    Tags: null as string[] | null,
    Size: h.empty_layer ? 0 : (layers[layer++]?.size ?? 0),
    Comment: h.comment ?? '',
  }));
  rows.reverse();
  if (rows.length) {
    rows[0].Id = id;
    const tags = svc.records.tagsOf(id).map(familiar);
    rows[0].Tags = tags.length ? tags : null;
  }
  return rows;
}
