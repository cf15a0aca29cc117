// Hijacked connections (node:http's 'upgrade' event): POST /containers/{id}/attach and
// POST /exec/{id}/start with "Connection: Upgrade" / "Upgrade: tcp" are answered "101 UPGRADED",
// then the socket carries the process's streams both ways.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { KrError } from '../../util/errors.ts';
import { splitVersion } from '../api-version.ts';
import type { EngineContext } from '../context.ts';
import { messageOf, statusOf } from '../errors.ts';
import { pumpAttach } from '../containers/streams.ts';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from '../containers/detach-keys.ts';
import { queryBool } from '../router.ts';

function refuse(conn: Duplex, err: unknown): void {
  const body = JSON.stringify({ message: messageOf(err) }) + '\n';
  const status = statusOf(err);
  conn.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function upgraded(conn: Duplex, tty: boolean): void {
  conn.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.${tty ? 'raw' : 'multiplexed'}-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
}

/**
 * The request body of an upgrade request: node hands it over as the start of the raw stream
 * (`head`, then the socket). Reads Content-Length bytes; what follows is the client's stdin.
 * The connection is left paused.
 */
function readUpgradeBody(req: IncomingMessage, conn: Duplex, head: Buffer): Promise<{ body: Buffer; rest: Buffer }> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (!Number.isSafeInteger(length) || length < 0 || length > 1 << 20) return Promise.reject(new KrError('invalid', 'bad Content-Length'));
  if (req.headers['transfer-encoding']) return Promise.reject(new KrError('invalid', 'a chunked body is not supported on a hijacked request'));
  conn.pause();
  if (head.length >= length) return Promise.resolve({ body: head.subarray(0, length), rest: head.subarray(length) });
  return new Promise((resolve, reject) => {
    let got = head;
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < length) return;
      conn.pause();
      conn.off('data', onData);
      conn.off('end', onEnd);
      resolve({ body: got.subarray(0, length), rest: got.subarray(length) });
    };
    const onEnd = () => reject(new KrError('invalid', 'the request body ended early'));
    conn.on('data', onData);
    conn.once('end', onEnd);
    conn.resume();
  });
}

function parseBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new KrError('invalid', `invalid JSON: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new KrError('invalid', 'request body must be an object');
  return v as Record<string, unknown>;
}

export function hijackHandler(ctx: Pick<EngineContext, 'containers' | 'execs'>): (req: IncomingMessage, conn: Duplex, head: Buffer) => void {
  return (req, conn, head) => {
    conn.on('error', () => undefined);
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://krd');
      const { path } = splitVersion(url.pathname);
      if (req.method !== 'POST') throw new KrError('not-found', 'page not found');
      const attach = /^\/containers\/([^/]+)\/attach$/.exec(path);
      if (attach) {
        const q = url.searchParams;
        const ref = decodeURIComponent(attach[1]);
        const detachKeys = parseDetachKeys(q.get('detachKeys') || DEFAULT_DETACH_KEYS);
        const { tty, stdinOnce, stdio } = await ctx.containers.attach(ref);
        upgraded(conn, tty);
        const onDetach = () => ctx.containers.detached(ref);
        pumpAttach(conn, head, stdio, { tty, stdinOnce, stdin: queryBool(q, 'stdin'), stdout: queryBool(q, 'stdout'), stderr: queryBool(q, 'stderr'), detachKeys, onDetach });
        return;
      }
      const exec = /^\/exec\/([^/]+)\/start$/.exec(path);
      if (!exec) throw new KrError('not-found', 'page not found');
      const { body, rest } = await readUpgradeBody(req, conn, head);
      if (parseBody(body).Detach === true) throw new KrError('invalid', 'a detached exec start takes no hijacked connection');
      const { tty, config, stdio, exited } = await ctx.execs.start(decodeURIComponent(exec[1]));
      const detachKeys = parseDetachKeys(config.DetachKeys || DEFAULT_DETACH_KEYS);
      upgraded(conn, tty);
      // the client's half-close ends the exec's stdin; the connection ends once the exit is recorded
      pumpAttach(conn, rest, stdio, { tty, stdinOnce: true, stdin: config.AttachStdin, stdout: config.AttachStdout, stderr: config.AttachStderr, exited, detachKeys });
      conn.resume();
    })().catch((err) => refuse(conn, err));
  };
}
