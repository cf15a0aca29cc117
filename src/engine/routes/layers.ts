// docker diff (GET /containers/{id}/changes), docker export (GET /containers/{id}/export) and
// docker commit (POST /commit); a pod VM's vdocker
// also hands the host the layer itself (GET /kraud/containers/{id}/layer) for a commit there.
import { PassThrough } from 'node:stream';
import { KrError } from '../../util/errors.ts';
import type { ContainerLayers } from '../containers/layers.ts';
import { json, queryBool, readJson, type Router } from '../router.ts';

export function changesRoute(router: Router, ctx: { layers: ContainerLayers }): void {
  router.add('GET', /^\/containers\/([^/]+)\/changes$/, async ({ res, params }) => {
    json(res, 200, await ctx.layers.changes(params[0]));
  });
}

export function exportRoute(router: Router, ctx: { layers: ContainerLayers }): void {
  router.add('GET', /^\/containers\/([^/]+)\/export$/, async ({ res, params }) => {
    // resolved before the head goes out, so an unknown container is still a plain 404
    let started = false;
    const out = new PassThrough();
    const done = ctx.layers.export(params[0], out);
    out.once('readable', () => {
      started = true;
      res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      out.pipe(res);
    });
    try {
      await done;
    } catch (err) {
      if (!started) throw err;
      res.destroy();
    }
  });
}

export function commitRoute(router: Router, ctx: { layers: ContainerLayers }): void {
  router.add('POST', /^\/commit$/, async ({ req, res, query }) => {
    const container = query.get('container');
    if (!container) throw new KrError('invalid', 'commit: no container given (container=)');
    const body = await readJson(req);
    const opt = (k: string) => query.get(k) || undefined;
    const { Id } = await ctx.layers.commit(container, { repo: opt('repo'), tag: opt('tag'), comment: opt('comment'), author: opt('author'), pause: queryBool(query, 'pause', true), changes: query.getAll('changes').filter((c) => c.trim() !== ''), config: body });
    json(res, 201, { Id });
  });
}

export function podLayerRoute(router: Router, ctx: { layers: ContainerLayers }): void {
  router.add('GET', /^\/kraud\/containers\/([^/]+)\/layer$/, async ({ res, params }) => {
    const tar = await ctx.layers.layer(params[0]);
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    res.on('close', () => tar.destroy());
    tar.on('error', () => res.destroy());
    tar.pipe(res);
  });
}
