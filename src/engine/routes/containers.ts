// Container routes: translate requests into ContainerService calls and answers into docker's shapes.
import { KrError } from '../../util/errors.ts';
import type { EngineContext } from '../context.ts';
import type { WaitCondition } from '../containers/service.ts';
import { writeLogs } from '../containers/streams.ts';
import { json, noContent, queryBool, queryFilters, readJson, type Router } from '../router.ts';

const ID = '([^/]+)';

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw new KrError('invalid', `invalid value for ${name}: ${JSON.stringify(v)}`);
  return Number(v);
}

/** docker's since/until: unix seconds with an optional fraction. */
function timeParam(q: URLSearchParams, name: string): Date | undefined {
  const v = q.get(name);
  if (!v || v === '0') return undefined;
  if (!/^\d+(\.\d+)?$/.test(v)) throw new KrError('invalid', `invalid value for ${name}: ${JSON.stringify(v)}`);
  return new Date(Number(v) * 1000);
}

export function containerRoutes(router: Router, ctx: Pick<EngineContext, 'containers'>, opts: { create: boolean } = { create: true }): void {
  const svc = ctx.containers;

  // docker's create is krd's; vdocker's pod gets containers from its host another way (POST /kraud/containers)
  if (opts.create) {
    router.add('POST', /^\/containers\/create$/, async ({ req, res, query }) => {
      const body = await readJson(req);
      json(res, 201, await svc.create(body, query.get('name') || undefined));
    });
  }

  router.add('DELETE', new RegExp(`^/containers/${ID}$`), async ({ res, params, query }) => {
    await svc.remove(params[0], queryBool(query, 'force'), queryBool(query, 'v'));
    noContent(res);
  });

  router.add('GET', /^\/containers\/json$/, ({ res, query }) => {
    json(res, 200, svc.list(queryBool(query, 'all'), queryFilters(query)));
  });

  router.add('GET', new RegExp(`^/containers/${ID}/json$`), ({ res, params }) => {
    json(res, 200, svc.inspect(params[0]));
  });

  router.add('POST', new RegExp(`^/containers/${ID}/start$`), async ({ res, params }) => {
    noContent(res, (await svc.start(params[0])) ? 204 : 304);
  });

  router.add('POST', new RegExp(`^/containers/${ID}/wait$`), async ({ res, params, query }) => {
    const condition = (query.get('condition') || 'not-running') as WaitCondition;
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw new KrError('invalid', `invalid condition: ${JSON.stringify(condition)}`);
    const abort = new AbortController();
    res.on('close', () => res.writableFinished || abort.abort());
    const { done } = svc.wait(params[0], condition, abort.signal);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const code = await done.catch(() => undefined);
    if (code !== undefined) res.end(JSON.stringify({ Error: null, StatusCode: code }) + '\n');
  });

  router.add('POST', new RegExp(`^/containers/${ID}/kill$`), async ({ res, params, query }) => {
    await svc.kill(params[0], query.get('signal') || 'SIGKILL');
    noContent(res);
  });

  router.add('POST', new RegExp(`^/containers/${ID}/stop$`), async ({ res, params, query }) => {
    noContent(res, (await svc.stop(params[0], intParam(query, 't'), query.get('signal') || undefined)) ? 204 : 304);
  });

  router.add('POST', new RegExp(`^/containers/${ID}/restart$`), async ({ res, params, query }) => {
    await svc.restart(params[0], intParam(query, 't'), query.get('signal') || undefined);
    noContent(res);
  });

  router.add('POST', new RegExp(`^/containers/${ID}/pause$`), async ({ res, params }) => {
    await svc.pause(params[0]);
    noContent(res);
  });

  router.add('POST', new RegExp(`^/containers/${ID}/unpause$`), async ({ res, params }) => {
    await svc.unpause(params[0]);
    noContent(res);
  });

  router.add('POST', new RegExp(`^/containers/${ID}/rename$`), ({ res, params, query }) => {
    svc.rename(params[0], query.get('name') ?? '');
    noContent(res);
  });

  router.add('POST', /^\/containers\/prune$/, async ({ res, query }) => {
    json(res, 200, await svc.prune(queryFilters(query)));
  });

  router.add('POST', new RegExp(`^/containers/${ID}/resize$`), async ({ res, params, query }) => {
    await svc.resize(params[0], intParam(query, 'h') ?? 0, intParam(query, 'w') ?? 0);
    res.writeHead(200);
    res.end();
  });


  router.add('GET', new RegExp(`^/containers/${ID}/logs$`), async ({ res, params, query }) => {
    const stdout = queryBool(query, 'stdout');
    const stderr = queryBool(query, 'stderr');
    if (!stdout && !stderr) throw new KrError('invalid', 'Bad parameters: you must choose at least one stream');
    const tailText = query.get('tail');
    const tail = !tailText || tailText === 'all' ? undefined : intParam(query, 'tail');
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const follow = queryBool(query, 'follow');
    const { tty, entries } = await svc.logs(params[0], { follow, tail, since: timeParam(query, 'since'), until: timeParam(query, 'until'), signal: abort.signal });
    res.writeHead(200, { 'Content-Type': tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
    res.flushHeaders();
    await writeLogs(res, entries, { tty, stdout, stderr, timestamps: queryBool(query, 'timestamps') });
    res.end();
  });
}
