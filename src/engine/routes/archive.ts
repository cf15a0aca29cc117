// docker cp: GET /containers/{id}/archive (a tar of a path), HEAD (its stat alone), PUT (extract a
// tar into a directory). The stat travels in X-Docker-Container-Path-Stat on GET and HEAD.
import { KrError } from '../../util/errors.ts';
import type { EngineContext } from '../context.ts';
import { pathStatHeader } from '../archive/service.ts';
import { queryBool, type Router } from '../router.ts';

const ARCHIVE = /^\/containers\/([^/]+)\/archive$/;

function pathParam(q: URLSearchParams): string {
  const path = q.get('path');
  if (!path) throw new KrError('invalid', 'Path cannot be empty');
  return path;
}

export function archiveRoutes(router: Router, ctx: Pick<EngineContext, 'archive'>): void {
  const svc = ctx.archive;

  router.add('HEAD', ARCHIVE, async ({ res, params, query }) => {
    const stat = await svc.stat(params[0], pathParam(query));
    res.writeHead(200, { 'X-Docker-Container-Path-Stat': pathStatHeader(stat), 'Content-Type': 'application/x-tar' });
    res.end();
  });

  router.add('GET', ARCHIVE, async ({ res, params, query }) => {
    const { stat, tar } = await svc.get(params[0], pathParam(query));
    res.writeHead(200, { 'X-Docker-Container-Path-Stat': pathStatHeader(stat), 'Content-Type': 'application/x-tar' });
    res.on('close', () => tar.destroy());
    tar.on('error', () => res.destroy());
    tar.pipe(res);
  });

  router.add('PUT', ARCHIVE, async ({ req, res, params, query }) => {
    await svc.put(params[0], pathParam(query), req, {
      noOverwriteDirNonDir: queryBool(query, 'noOverwriteDirNonDir'),
      copyUIDGID: queryBool(query, 'copyUIDGID'),
    });
    res.writeHead(200);
    res.end();
  });
}
