// Network routes: translate requests into NetworkService / ContainerNetworks calls.
import type { EngineContext } from '../context.ts';
import { json, noContent, queryFilters, readJson, type Router } from '../router.ts';

const ID = '([^/]+)';

export function networkRoutes(router: Router, ctx: EngineContext): void {
  const nets = ctx.networks;

  router.add('GET', /^\/networks\/?$/, ({ res, query }) => json(res, 200, nets.list(queryFilters(query))));
  router.add('POST', /^\/networks\/create$/, async ({ req, res }) => json(res, 201, await nets.create(await readJson(req))));
  router.add('POST', /^\/networks\/prune$/, async ({ res, query }) => json(res, 200, await nets.prune(queryFilters(query))));
  router.add('GET', new RegExp(`^/networks/${ID}$`), ({ res, params }) => json(res, 200, nets.inspect(params[0])));
  router.add('DELETE', new RegExp(`^/networks/${ID}$`), async ({ res, params }) => {
    await nets.remove(params[0]);
    noContent(res);
  });
  router.add('POST', new RegExp(`^/networks/${ID}/connect$`), async ({ req, res, params }) => {
    await ctx.containerNetworks.connect(params[0], await readJson(req));
    json(res, 200, {});
  });
  router.add('POST', new RegExp(`^/networks/${ID}/disconnect$`), async ({ req, res, params }) => {
    await ctx.containerNetworks.disconnect(params[0], await readJson(req));
    json(res, 200, {});
  });
}
