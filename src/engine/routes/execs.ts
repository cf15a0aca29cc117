// Exec routes: translate requests into ExecService calls. The attached start (what docker exec
// uses) is a hijacked connection, served in ./hijack.ts; a detached one (docker exec -d) is here.
import { KrError } from '../../util/errors.ts';
import type { EngineContext } from '../context.ts';
import { json, readJson, type Router } from '../router.ts';

const ID = '([^/]+)';

function size(q: URLSearchParams, name: string): number {
  const v = q.get(name) ?? '';
  if (!/^\d+$/.test(v)) throw new KrError('invalid', `invalid value for ${name}: ${JSON.stringify(v)}`);
  return Number(v);
}

export function execRoutes(router: Router, ctx: Pick<EngineContext, 'execs'>): void {
  const svc = ctx.execs;

  router.add('POST', new RegExp(`^/containers/${ID}/exec$`), async ({ req, res, params }) => {
    const body = await readJson(req);
    json(res, 201, svc.create(params[0], body));
  });

  router.add('POST', new RegExp(`^/exec/${ID}/start$`), async ({ req, res, params }) => {
    const body = (await readJson(req)) as { Detach?: unknown } | null;
    if (body?.Detach !== true) throw new KrError('invalid', 'an attached exec start needs a hijacked connection (Connection: Upgrade)');
    const { stdio } = await svc.start(params[0]);
    stdio.stdout.resume();
    stdio.stderr?.resume();
    stdio.stdin?.end();
    res.writeHead(200);
    res.end();
  });

  router.add('POST', new RegExp(`^/exec/${ID}/resize$`), async ({ res, params, query }) => {
    await svc.resize(params[0], size(query, 'h'), size(query, 'w'));
    res.writeHead(200);
    res.end();
  });

  router.add('GET', new RegExp(`^/exec/${ID}/json$`), ({ res, params }) => {
    json(res, 200, svc.inspect(params[0]));
  });
}
