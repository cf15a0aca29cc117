// The host's client of one pod's vdocker. The guest is hostile: every answer is read with a size
// bound and a deadline, JSON is checked before use, stream frames are bounded, and any surprise
// becomes a KrError('unavailable', 'pod …: …') — never a crash or a hang of krd. Only the calls
// that wait by nature (wait, logs -f, attach, exec streams) run without a deadline once answered.
import http from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { KrError } from '../../util/errors.ts';

export interface Endpoint {
  host: string;
  port: number;
  secret: string;
  /** For messages: "pod 1a2b3c". */
  label: string;
  /** How long a plain call may take (default 15 s). */
  deadlineMs?: number;
}

const MAX_JSON = 1 << 20;
const MAX_FRAME = 8 << 20;
const DEADLINE_MS = 15_000;

function fail(ep: Endpoint, what: string): KrError {
  return new KrError('unavailable', `${ep.label}: ${what}`);
}

/** A vdocker error answer ({"message"}) back as the KrError kind dockerd's status means. */
function answerError(ep: Endpoint, status: number, body: Buffer): KrError {
  let message = '';
  try {
    const v = JSON.parse(body.toString('utf8')) as { message?: unknown };
    if (typeof v?.message === 'string') message = v.message.slice(0, 1000);
  } catch {
    // not JSON: the status alone
  }
  const kind = status === 400 ? 'invalid' : status === 404 ? 'not-found' : status === 409 ? 'conflict' : status === 401 ? 'unauthorized' : status === 403 ? 'denied' : 'unavailable';
  return new KrError(kind, message || `${ep.label}: vdocker answered ${status}`);
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

interface RequestOptions {
  body?: Buffer | Readable;
  /** Bytes of body accepted (default 1 MiB). */
  limit?: number;
  /** Default 15 s for the whole exchange; 0: none once the headers came (wait). */
  deadlineMs?: number;
  headers?: Record<string, string>;
}

/** One request; the whole answer read (bounded). Non-2xx answers throw with vdocker's message. */
export function call(ep: Endpoint, method: string, path: string, o: RequestOptions = {}): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const limit = o.limit ?? MAX_JSON;
    const deadline = o.deadlineMs ?? ep.deadlineMs ?? DEADLINE_MS;
    const headers: Record<string, string> = { Authorization: `Bearer ${ep.secret}`, ...o.headers };
    if (Buffer.isBuffer(o.body)) headers['Content-Type'] ??= 'application/json';
    const req = http.request({ host: ep.host, port: ep.port, method, path, headers, agent: false });
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      clearTimeout(timer);
      if (ms > 0) timer = setTimeout(() => req.destroy(fail(ep, `no answer to ${method} ${path} within ${ms / 1000} s`)), ms);
    };
    arm(deadline || ep.deadlineMs || DEADLINE_MS); // the headers always come within the deadline
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof KrError ? err : fail(ep, `${method} ${path}: ${err.message}`));
    });
    req.on('response', (res) => {
      if (!deadline) arm(0);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limit) return req.destroy(fail(ep, `answer to ${method} ${path} larger than ${limit} bytes`));
        chunks.push(c);
      });
      res.on('error', () => undefined);
      res.on('end', () => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        const body = Buffer.concat(chunks);
        if (status < 200 || status > 299) return reject(answerError(ep, status, body));
        resolve({ status, headers: res.headers, body });
      });
    });
    if (o.body && !Buffer.isBuffer(o.body)) {
      o.body.on('error', (err) => req.destroy(err));
      o.body.pipe(req);
    } else req.end(o.body);
  });
}

/** A JSON answer checked by `check` (which throws or returns the typed value). */
export async function callJson<T>(ep: Endpoint, method: string, path: string, check: (v: unknown) => T, o: RequestOptions = {}): Promise<T> {
  const a = await call(ep, method, path, o);
  let v: unknown;
  try {
    v = JSON.parse(a.body.toString('utf8'));
  } catch {
    throw fail(ep, `${method} ${path}: the answer is not JSON`);
  }
  try {
    return check(v);
  } catch (err) {
    throw fail(ep, `${method} ${path}: unexpected answer (${(err as Error).message})`);
  }
}

/** A streaming GET: resolves with the response once its headers are in (2xx), else throws. */
export function stream(ep: Endpoint, method: string, path: string, body?: Buffer): Promise<{ res: http.IncomingMessage; abort: () => void }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: ep.host, port: ep.port, method, path, headers: { Authorization: `Bearer ${ep.secret}`, ...(body ? { 'Content-Type': 'application/json' } : {}) }, agent: false });
    const ms = ep.deadlineMs ?? DEADLINE_MS;
    const timer = setTimeout(() => req.destroy(fail(ep, `no answer to ${method} ${path} within ${ms / 1000} s`)), ms);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof KrError ? err : fail(ep, `${method} ${path}: ${err.message}`));
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      const status = res.statusCode ?? 0;
      if (status >= 200 && status <= 299) return resolve({ res, abort: () => req.destroy() });
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => ((size += c.length) <= MAX_JSON ? chunks.push(c) : req.destroy()));
      res.on('end', () => reject(answerError(ep, status, Buffer.concat(chunks))));
      res.on('error', () => reject(fail(ep, `${method} ${path}: ${status}`)));
    });
    req.end(body);
  });
}

/**
 * A hijacked connection (attach, exec start): "101 UPGRADED", then the raw socket. Bytes the
 * guest sent after its answer's head come back as `head`.
 */
export function hijack(ep: Endpoint, path: string, body?: Buffer): Promise<{ socket: Socket; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${ep.secret}`, Connection: 'Upgrade', Upgrade: 'tcp' };
    if (body) headers['Content-Type'] = 'application/json';
    const req = http.request({ host: ep.host, port: ep.port, method: 'POST', path, headers, agent: false });
    const ms = ep.deadlineMs ?? DEADLINE_MS;
    const timer = setTimeout(() => req.destroy(fail(ep, `no answer to POST ${path} within ${ms / 1000} s`)), ms);
    req.on('upgrade', (res, socket, head) => {
      clearTimeout(timer);
      if (res.statusCode !== 101) {
        socket.destroy();
        return reject(fail(ep, `POST ${path}: upgrade answered ${res.statusCode}`));
      }
      resolve({ socket, head });
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => ((size += c.length) <= MAX_JSON ? chunks.push(c) : req.destroy()));
      res.on('end', () => reject(answerError(ep, res.statusCode ?? 0, Buffer.concat(chunks))));
      res.on('error', () => reject(fail(ep, `POST ${path}: broken answer`)));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof KrError ? err : fail(ep, `POST ${path}: ${err.message}`));
    });
    req.end(body);
  });
}

/**
 * Splits docker's multiplexed stream (8-byte headers: stream, 0, 0, 0, uint32 BE length) into
 * stdout and stderr. A frame of an unknown stream or over 8 MiB ends both with an error marker:
 * the guest is lying, and what it sent is not passed on.
 */
export function demux(src: Readable, onFrame: (stream: 1 | 2, data: Buffer) => void, onEnd: (err?: Error) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  let done = false;
  const end = (err?: Error) => {
    if (done) return;
    done = true;
    onEnd(err);
  };
  src.on('data', (d: Buffer) => {
    if (done) return;
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 8) {
      const kind = buf[0];
      const len = buf.readUInt32BE(4);
      if ((kind !== 1 && kind !== 2) || len > MAX_FRAME) {
        src.destroy();
        return end(new Error(`bad frame (stream ${kind}, ${len} bytes)`));
      }
      if (buf.length < 8 + len) break;
      onFrame(kind, Buffer.from(buf.subarray(8, 8 + len)));
      buf = buf.subarray(8 + len);
    }
  });
  src.on('end', () => end());
  src.on('close', () => end());
  src.on('error', (err) => end(err));
}

/** A readable that ends when the response does (for GET archive: the tar, passed through). */
export function passThrough(res: http.IncomingMessage, abort: () => void): Readable {
  const out = new PassThrough();
  res.on('error', (err) => out.destroy(err));
  out.on('close', () => res.complete || abort());
  res.pipe(out);
  return out;
}
