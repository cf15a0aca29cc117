// Image routes: translate requests into ImageService calls and answers into docker's shapes.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage } from 'node:http';
import { KrError } from '../../util/errors.ts';
import type { Credentials } from '../../image/registry/index.ts';
import type { EngineContext } from '../context.ts';
import { loadImages } from '../images/load.ts';
import { writeDockerArchive, type SaveItem } from '../images/save.ts';
import { imageHistory, inspectImage, listImages } from '../images/views.ts';
import { json, JsonStream, queryBool, queryFilters, type Router } from '../router.ts';

/** X-Registry-Auth: base64url JSON {username, password, serveraddress}; absent or empty = anonymous. */
export function registryAuth(req: IncomingMessage): Credentials | undefined {
  const raw = req.headers['x-registry-auth'];
  if (typeof raw !== 'string' || raw === '') return undefined;
  let doc: { username?: unknown; password?: unknown };
  try {
    doc = JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
  } catch {
    throw new KrError('invalid', 'invalid X-Registry-Auth header: not base64-encoded JSON');
  }
  if (doc && typeof doc.username === 'string' && doc.username !== '' && typeof doc.password === 'string') {
    return { username: doc.username, password: doc.password };
  }
  return undefined;
}

/** The request body into a temp file beside the store's blobs (removed by the caller). */
async function spool(ctx: EngineContext, req: IncomingMessage): Promise<string> {
  const file = join(ctx.images.tmpDir, `${process.pid}-upload-${randomBytes(6).toString('hex')}`);
  try {
    await pipeline(req, createWriteStream(file, { flags: 'wx' }));
  } catch (err) {
    await fsp.rm(file, { force: true });
    throw new KrError('invalid', `failed to receive the archive: ${(err as Error).message}`);
  }
  return file;
}

export function imageRoutes(router: Router, ctx: EngineContext): void {
  const svc = ctx.images;

  router.add('GET', /^\/images\/json$/, async ({ res, query }) => {
    json(res, 200, await listImages(svc, queryFilters(query)));
  });

  router.add('POST', /^\/images\/create$/, async ({ req, res, query }) => {
    const fromImage = query.get('fromImage');
    const fromSrc = query.get('fromSrc');
    const stream = new JsonStream(res);
    if (fromImage) {
      const abort = new AbortController();
      res.on('close', () => res.writableFinished || abort.abort(new Error('client went away')));
      await svc.pull({
        fromImage,
        tag: query.get('tag') ?? undefined,
        platform: query.get('platform') ?? undefined,
        auth: registryAuth(req),
        signal: abort.signal,
        send: (m) => stream.write(m),
      });
      stream.end();
      return;
    }
    if (fromSrc === '-') {
      const repo = query.get('repo') ?? '';
      const tag = query.get('tag') ?? '';
      const file = await spool(ctx, req);
      try {
        const [id] = await loadImages(svc, file, { trusted: ctx.trusted, send: (m) => stream.write(m), name: repo ? (tag ? `${repo}:${tag}` : repo) : undefined });
        svc.event('import', id);
        stream.write({ status: id });
      } finally {
        await fsp.rm(file, { force: true });
      }
      stream.end();
      return;
    }
    if (fromSrc) throw new KrError('invalid', 'importing from a URL is not supported; send the file (fromSrc=-)');
    throw new KrError('invalid', 'fromImage or fromSrc is required');
  });

  router.add('POST', /^\/images\/load$/, async ({ req, res }) => {
    const stream = new JsonStream(res);
    const file = await spool(ctx, req);
    try {
      for (const id of await loadImages(svc, file, { trusted: ctx.trusted, send: (m) => stream.write(m) })) svc.event('load', id);
    } finally {
      await fsp.rm(file, { force: true });
    }
    stream.end();
  });

  router.add('POST', /^\/images\/prune$/, async ({ res, query }) => {
    const filters = queryFilters(query);
    for (const k of filters.keys()) if (k !== 'dangling') throw new KrError('invalid', `invalid filter '${k}'`);
    const d = filters.get('dangling')?.[0];
    json(res, 200, await svc.prune(!(d === 'false' || d === '0')));
  });

  const save = async (res: import('node:http').ServerResponse, names: string[]) => {
    if (names.length === 0) throw new KrError('invalid', 'no image names given');
    const items = new Map<string, SaveItem>();
    for (const name of names) {
      const { id, ref } = svc.resolve(name);
      const item = items.get(id) ?? { id, tags: [] };
      if (ref && !ref.digest && !item.tags.includes(ref.canonical)) item.tags.push(ref.canonical);
      items.set(id, item);
    }
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    try {
      await writeDockerArchive(svc, [...items.values()], res);
      res.end();
      for (const item of items.values()) svc.event('save', item.id);
    } catch {
      res.destroy(); // a cut-off tar, not a valid-looking short one
    }
  };
  router.add('GET', /^\/images\/get$/, ({ res, query }) => save(res, query.getAll('names').flatMap((n) => n.split(',')).filter(Boolean)));
  router.add('GET', /^\/images\/(.+)\/get$/, ({ res, params }) => save(res, [params[0]]));

  router.add('GET', /^\/images\/(.+)\/json$/, async ({ res, params }) => {
    json(res, 200, await inspectImage(svc, params[0]));
  });

  router.add('GET', /^\/images\/(.+)\/history$/, async ({ res, params }) => {
    json(res, 200, await imageHistory(svc, params[0]));
  });

  router.add('POST', /^\/images\/(.+)\/tag$/, ({ res, params, query }) => {
    svc.tag(params[0], query.get('repo') ?? '', query.get('tag') ?? '');
    res.writeHead(201);
    res.end();
  });

  router.add('DELETE', /^\/images\/(.+)$/, ({ res, params, query }) => {
    json(res, 200, svc.remove(params[0], queryBool(query, 'force')));
  });
}
