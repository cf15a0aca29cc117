// Volume routes: translate requests into VolumeService calls, answers in docker's shapes.
import type { EngineContext } from '../context.ts';
import { json, noContent, queryBool, queryFilters, readJson, type Router } from '../router.ts';
import { parseCreateVolume } from '../volumes/service.ts';

export function volumeRoutes(router: Router, ctx: EngineContext): void {
  const svc = ctx.volumes;

  router.add('POST', /^\/volumes\/create$/, async ({ req, res }) => {
    const { volume } = await svc.create(parseCreateVolume(await readJson(req)));
    json(res, 201, svc.view(volume));
  });

  router.add('GET', /^\/volumes$/, ({ res, query }) => {
    json(res, 200, svc.list(queryFilters(query)));
  });

  router.add('POST', /^\/volumes\/prune$/, async ({ res, query, version }) => {
    // before API 1.42 prune took every unused volume; since, only anonymous ones unless all=true
    const filters = queryFilters(query);
    if (Number(version.split('.')[1]) < 42 && version.startsWith('1.') && !filters.has('all')) filters.set('all', ['true']);
    json(res, 200, await svc.prune(filters));
  });

  router.add('GET', /^\/volumes\/([^/]+)$/, ({ res, params }) => {
    json(res, 200, svc.view(svc.get(params[0])));
  });

  router.add('DELETE', /^\/volumes\/([^/]+)$/, async ({ res, params, query }) => {
    await svc.remove(params[0], queryBool(query, 'force'));
    noContent(res);
  });
}
