// An Engine API "daemon" that answers the requests of `docker run --rm IMG CMD` at once and
// runs nothing: ping, create, attach (hijacked, ended when start comes), wait (answered when
// start comes), start. `docker run` against it costs the docker CLI's own work only, so the krd
// bench can say how much of a `docker run` no daemon can save (the CLI is a Go binary that
// parses, dials, encodes and tears down on every command). Used by bench/krd.bench.ts only.
import http from 'node:http';
import type { Socket } from 'node:net';
import { rm } from 'node:fs/promises';

const ID = 'f'.repeat(64);
const API = /^\/v[0-9.]+/;

export interface InstantDaemon {
  socket: string;
  close(): Promise<void>;
}

export async function startInstantDaemon(socket: string): Promise<InstantDaemon> {
  await rm(socket, { force: true });
  // what start finishes: the open attach streams and wait answers of the one container
  let pending: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').replace(API, '').split('?')[0];
    req.resume();
    req.on('end', () => {
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json', 'Api-Version': '1.47' });
        res.end(JSON.stringify(body));
      };
      if (path === '/_ping') {
        res.writeHead(200, { 'Api-Version': '1.47', 'Content-Type': 'text/plain' });
        return res.end(req.method === 'HEAD' ? undefined : 'OK');
      }
      if (path === '/containers/create') return json(201, { Id: ID, Warnings: [] });
      if (path.endsWith('/wait')) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.flushHeaders();
        pending.push(() => res.end(JSON.stringify({ StatusCode: 0, Error: null })));
        return;
      }
      if (path.endsWith('/start')) {
        res.writeHead(204);
        res.end();
        const now = pending;
        pending = [];
        for (const f of now) f();
        return;
      }
      json(404, { message: `the instant daemon does not serve ${req.method} ${path}` });
    });
  });
  server.on('upgrade', (req, sock: Socket) => {
    sock.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    sock.on('error', () => undefined);
    req.resume();
    pending.push(() => sock.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  return {
    socket,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
