// A tiny router: method + path pattern → handler. Handlers translate a request into a service
// call and write the answer with the helpers below; a thrown KrError becomes docker's error
// answer (status + {"message"}), or an error line when a JSON stream was already under way.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KrError } from '../util/errors.ts';
import { splitVersion } from './api-version.ts';
import { messageOf, statusOf, streamError } from './errors.ts';

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  /** Captured groups of the route's pattern, URI-decoded. */
  params: string[];
  query: URLSearchParams;
  /** API version of the request ("1.50" when the path carried none). */
  version: string;
}

export type Handler = (ctx: Ctx) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: RegExp, handler: Handler): this {
    this.routes.push({ method, pattern, handler });
    return this;
  }

  /** Serves one request; never throws. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://krd');
      const { version, path } = splitVersion(url.pathname);
      const method = req.method === 'HEAD' ? 'HEAD' : (req.method ?? 'GET');
      for (const route of this.routes) {
        const m = route.pattern.exec(path);
        if (!m) continue;
        if (route.method !== method) continue;
        const params = m.slice(1).map((p) => (p === undefined ? '' : decodeURIComponent(p)));
        await route.handler({ req, res, params, query: url.searchParams, version });
        return;
      }
      // dockerd answers unknown paths and wrong methods alike.
      throw new KrError('not-found', 'page not found');
    } catch (err) {
      fail(res, err);
    }
  }
}

function fail(res: ServerResponse, err: unknown): void {
  if (!(err instanceof KrError) && process.env.KRAUD_DEBUG) process.stderr.write(`krd: ${(err as Error)?.stack ?? err}\n`);
  if (!res.headersSent) {
    json(res, statusOf(err), { message: messageOf(err) });
  } else if (!res.writableEnded) {
    if (String(res.getHeader('content-type')).startsWith('application/json')) res.end(streamError(err));
    else res.destroy();
  }
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value) + '\n');
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

export function noContent(res: ServerResponse, status = 204): void {
  res.writeHead(status);
  res.end();
}

/** docker's boolean query values: 1/true/True/yes → true; absent, "", 0, false → false. */
export function queryBool(q: URLSearchParams, name: string, dflt = false): boolean {
  const v = q.get(name);
  if (v === null) return dflt;
  const s = v.toLowerCase();
  if (s === '' || s === '0' || s === 'false' || s === 'no') return false;
  if (s === '1' || s === 'true' || s === 'yes') return true;
  throw new KrError('invalid', `invalid value for ${name}: ${JSON.stringify(v)}`);
}

/** The `filters` query parameter: {"key":{"value":true}} or the old {"key":["value"]}. */
export function queryFilters(q: URLSearchParams): Map<string, string[]> {
  const raw = q.get('filters');
  const out = new Map<string, string[]>();
  if (!raw) return out;
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    throw new KrError('invalid', `invalid filter: ${raw}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new KrError('invalid', `invalid filter: ${raw}`);
  for (const [key, v] of Object.entries(doc as Record<string, unknown>)) {
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out.set(key, v as string[]);
    else if (v && typeof v === 'object' && !Array.isArray(v)) out.set(key, Object.keys(v));
    else throw new KrError('invalid', `invalid filter: ${raw}`);
  }
  return out;
}

/** Reads a JSON request body (at most `limit` bytes); an empty body is `undefined`. */
export async function readJson(req: IncomingMessage, limit = 4 << 20): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new KrError('invalid', `request body larger than ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new KrError('invalid', `invalid JSON: ${(err as Error).message}`);
  }
}

/** A newline-delimited JSON message stream (docker's jsonmessage), started on first write. */
export class JsonStream {
  private readonly res: ServerResponse;
  constructor(res: ServerResponse) {
    this.res = res;
  }
  get started(): boolean {
    return this.res.headersSent;
  }
  write(message: object): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.res.headersSent) this.res.writeHead(200, { 'Content-Type': 'application/json' });
    this.res.write(JSON.stringify(message) + '\r\n');
  }
  end(): void {
    if (!this.res.headersSent) this.res.writeHead(200, { 'Content-Type': 'application/json' });
    this.res.end();
  }
}
