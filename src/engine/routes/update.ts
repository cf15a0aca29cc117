// docker update: POST /containers/{id}/update with docker's UpdateConfig.
import type { ContainerUpdates } from '../containers/update.ts';
import { json, readJson, type Router } from '../router.ts';

export function updateRoute(router: Router, ctx: { updates: ContainerUpdates }): void {
  router.add('POST', /^\/containers\/([^/]+)\/update$/, async ({ req, res, params }) => {
    json(res, 200, await ctx.updates.update(params[0], await readJson(req)));
  });
}
