// The one place that speaks HTTP to registries and token servers. node:http streams bodies as
// Readables without a web-stream bridge, which matters for layer throughput; network failures
// become one-line KrErrors that name the peer.
import type * as http from 'node:http';
import type * as https from 'node:https';
import type { Readable } from 'node:stream';
import { KrError } from '../../util/errors.ts';

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A Buffer can be re-sent (after a 401 or a redirect); a stream only once. */
  body?: Buffer | Readable;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

// Keep-alive pools: a pull makes many small requests to one host. Idle sockets are unref'd by
// node's Agent, so they never keep the process alive.
const IDLE_TIMEOUT_MS = 120_000;
// Modules taken with getBuiltinModule, not `import`: the ESM facade of node:http touches all its
// lazy exports and so loads undici, and node:https loads TLS; together ~25 ms of every CLI
// start. https is loaded only when a registry speaks it (loopback registries do not).
const httpMod = process.getBuiltinModule('node:http');
const httpAgent = new httpMod.Agent({ keepAlive: true, maxSockets: 32 });
let httpsPair: { mod: typeof https; agent: https.Agent } | undefined;
function httpsClient(): { mod: typeof https; agent: https.Agent } {
  if (!httpsPair) {
    const mod = process.getBuiltinModule('node:https');
    httpsPair = { mod, agent: new mod.Agent({ keepAlive: true, maxSockets: 32 }) };
  }
  return httpsPair;
}

/** Sends one request (no redirects, no auth) and resolves when the response headers arrive. */
export function send(req: HttpRequest): Promise<HttpResponse> {
  const { url } = req;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new KrError('invalid', `unsupported URL scheme in ${url.href}`));
  }
  const { mod, agent } = url.protocol === 'https:' ? httpsClient() : { mod: httpMod, agent: httpAgent };
  const headers: Record<string, string> = { 'user-agent': 'kraud', ...req.headers };
  if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
  return new Promise((resolve, reject) => {
    const request = mod.request(url, { method: req.method, headers, agent, signal: req.signal });
    request.on('response', (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url }));
    request.on('error', (err) => reject(networkError(err, url)));
    // A registry that stops sending (headers or body) for this long is treated as gone.
    request.setTimeout(IDLE_TIMEOUT_MS, () => request.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    const body = req.body;
    if (body === undefined) request.end();
    else if (Buffer.isBuffer(body)) request.end(body);
    else {
      body.on('error', (err) => request.destroy(err));
      body.pipe(request);
    }
  });
}

/** Reads a whole (small) response body, refusing more than `limit` bytes. */
export async function readBody(res: HttpResponse, limit = 8 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      res.body.destroy();
      throw new KrError('corrupt', `response from ${res.url.host} larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Discards a response body so its socket can be reused. */
export function discard(res: HttpResponse): void {
  res.body.resume();
}

/** The registry's own error text from an OCI error body ({"errors":[{code,message}]}), if any. */
export async function registryErrorOf(res: HttpResponse): Promise<{ code?: string; message?: string }> {
  try {
    const doc = JSON.parse((await readBody(res, 64 << 10)).toString('utf8'));
    const first = Array.isArray(doc?.errors) ? doc.errors[0] : undefined;
    return { code: first?.code, message: first?.message };
  } catch {
    return {};
  }
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed while sending',
};

function networkError(err: unknown, url: URL): KrError {
  if (err instanceof KrError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError') return new KrError('unavailable', `request to ${url.host} aborted`, { cause: err });
  let reason = (e?.code && REASONS[e.code]) ?? e?.message ?? String(err);
  // Speaking TLS to a plain-HTTP registry fails deep in OpenSSL; say what it probably means.
  if (url.protocol === 'https:' && (e?.code === 'EPROTO' || /wrong version number|packet length too long/i.test(String(e?.message)))) {
    reason = 'TLS handshake failed (a plain-HTTP registry? mark it insecure)';
  }
  return new KrError('unavailable', `cannot reach registry ${url.host}: ${reason}`, { cause: err });
}
