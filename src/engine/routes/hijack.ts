// Hijacked connections (node:http's 'upgrade' event): POST /containers/{id}/attach with
// "Connection: Upgrade" / "Upgrade: tcp" is answered "101 UPGRADED", then the socket carries
// the container's streams both ways.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { KrError } from '../../util/errors.ts';
import { splitVersion } from '../api-version.ts';
import type { EngineContext } from '../context.ts';
import { messageOf, statusOf } from '../errors.ts';
import { pumpAttach } from '../containers/streams.ts';
import { queryBool } from '../router.ts';

function refuse(conn: Duplex, err: unknown): void {
  const body = JSON.stringify({ message: messageOf(err) }) + '\n';
  const status = statusOf(err);
  conn.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export function hijackHandler(ctx: EngineContext): (req: IncomingMessage, conn: Duplex, head: Buffer) => void {
  return (req, conn, head) => {
    conn.on('error', () => undefined);
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://krd');
      const { path } = splitVersion(url.pathname);
      const m = /^\/containers\/([^/]+)\/attach$/.exec(path);
      if (!m || req.method !== 'POST') throw new KrError('not-found', 'page not found');
      const q = url.searchParams;
      const { tty, stdinOnce, stdio } = await ctx.containers.attach(decodeURIComponent(m[1]));
      conn.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.${tty ? 'raw' : 'multiplexed'}-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
      pumpAttach(conn, head, stdio, { tty, stdinOnce, stdin: queryBool(q, 'stdin'), stdout: queryBool(q, 'stdout'), stderr: queryBool(q, 'stderr') });
    })().catch((err) => refuse(conn, err));
  };
}
