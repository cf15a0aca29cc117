// docker top (GET /containers/{id}/top?ps_args=) and docker stats (GET /containers/{id}/stats,
// one JSON object per line while streaming).
import type { EngineContext } from '../context.ts';
import { json, queryBool, type Router } from '../router.ts';

export function statsRoutes(router: Router, ctx: Pick<EngineContext, 'stats'>): void {
  const svc = ctx.stats;

  router.add('GET', /^\/containers\/([^/]+)\/top$/, async ({ res, params, query }) => {
    json(res, 200, await svc.top(params[0], query.get('ps_args') ?? ''));
  });

  router.add('GET', /^\/containers\/([^/]+)\/stats$/, async ({ res, params, query }) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const samples = svc.stats(params[0], { stream: queryBool(query, 'stream', true), oneShot: queryBool(query, 'one-shot'), signal: abort.signal });
    // the first sample before the answer, so an unknown container is still a plain 404
    const first = await samples.next();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    if (!first.done) res.write(JSON.stringify(first.value) + '\n');
    for await (const s of samples) {
      if (res.destroyed) break;
      res.write(JSON.stringify(s) + '\n');
    }
    res.end();
  });
}
