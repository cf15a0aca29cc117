// GET /system/df (docker system df): what images, containers and volumes hold — the one place
// docker's API reports volume UsageData (Size, RefCount).
import { KrError } from '../../util/errors.ts';
import type { EngineContext } from '../context.ts';
import { listImages } from '../images/views.ts';
import { json, type Router } from '../router.ts';

const TYPES = new Set(['container', 'image', 'volume', 'build-cache']);

export function systemDfRoutes(router: Router, ctx: EngineContext): void {
  router.add('GET', /^\/system\/df$/, async ({ res, query }) => {
    const types = query.getAll('type');
    for (const t of types) if (!TYPES.has(t)) throw new KrError('invalid', `unknown object type: ${t}`);
    const want = (t: string) => types.length === 0 || types.includes(t);
    const containers = ctx.containers.list(true, new Map()) as { ImageID: string }[];
    const users = new Map<string, number>();
    for (const c of containers) users.set(c.ImageID, (users.get(c.ImageID) ?? 0) + 1);
    const images = want('image') ? ((await listImages(ctx.images, new Map())) as { Id: string; Size: number }[]) : [];
    json(res, 200, {
      LayersSize: images.reduce((n, i) => n + i.Size, 0),
      Images: want('image') ? images.map((i) => ({ ...i, Containers: users.get(i.Id) ?? 0, SharedSize: 0 })) : null,
      Containers: want('container') ? containers.map((c) => ({ ...c, SizeRw: 0, SizeRootFs: 0 })) : null,
      Volumes: want('volume') ? await ctx.volumes.usage() : null,
      BuildCache: want('build-cache') ? [] : null,
    });
  });
}
