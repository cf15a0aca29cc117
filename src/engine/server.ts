// krd's listeners: unix sockets (mode 0660) and TCP with mutual TLS only. A socket file left by
// a killed krd is replaced, but only when nothing answers on it (a live krd keeps its socket).
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { dirname } from 'node:path';
import { KrError, withContext } from '../util/errors.ts';

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export type Listener = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
/** A request with "Connection: Upgrade" (docker's hijacked attach): the raw socket is the handler's. */
type UpgradeHandler = (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => void;

/** "unix:///run/x.sock", "tcp://127.0.0.1:2376" → a Listener. */
export function parseHost(spec: string): Listener {
  if (spec.startsWith('unix://')) {
    const path = spec.slice('unix://'.length);
    if (!path.startsWith('/')) throw new KrError('invalid', `invalid host ${spec}: unix socket path must be absolute`);
    return { kind: 'unix', path };
  }
  if (spec.startsWith('tcp://')) {
    const u = new URL(spec.replace(/^tcp:/, 'http:'));
    if (!u.port) throw new KrError('invalid', `invalid host ${spec}: a port is required`);
    return { kind: 'tcp', host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
  }
  throw new KrError('invalid', `invalid host ${spec}: expected unix:///path or tcp://host:port`);
}

export function describe(l: Listener, tls: boolean): string {
  return l.kind === 'unix' ? `unix://${l.path}` : `tcp://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}${tls ? ' (mutual TLS)' : ''}`;
}

export class EngineServer {
  private readonly servers: net.Server[] = [];
  private readonly sockets: string[] = [];
  /** Hijacked connections: closeAllConnections() does not know them, close() would wait for them. */
  private readonly hijacked = new Set<import('node:stream').Duplex>();

  /** Starts every listener; fails (closing what was opened) if any cannot listen. */
  static async listen(listeners: Listener[], handler: RequestHandler, tls?: TlsFiles, upgrade?: UpgradeHandler): Promise<EngineServer> {
    const out = new EngineServer();
    try {
      for (const l of listeners) await out.start(l, handler, tls, upgrade);
    } catch (err) {
      await out.close();
      throw err;
    }
    return out;
  }

  private async start(l: Listener, handler: RequestHandler, tls?: TlsFiles, upgrade?: UpgradeHandler): Promise<void> {
    let server: net.Server;
    if (l.kind === 'tcp') {
      if (!tls) throw new KrError('invalid', `refusing to listen on tcp://${l.host}:${l.port} without TLS: pass --tlsverify --tlscacert --tlscert --tlskey (see krd certs)`);
      let options: https.ServerOptions;
      try {
        options = { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), requestCert: true, rejectUnauthorized: true };
      } catch (err) {
        throw withContext(err, 'cannot read TLS files');
      }
      server = https.createServer(options, handler);
    } else {
      await replaceStaleSocket(l.path);
      server = http.createServer(handler);
    }
    const s = server as http.Server;
    if (upgrade) {
      s.on('upgrade', (req: http.IncomingMessage, sock: import('node:stream').Duplex, head: Buffer) => {
        this.hijacked.add(sock);
        sock.once('close', () => this.hijacked.delete(sock));
        upgrade(req, sock, head);
      });
    }
    s.keepAliveTimeout = 60_000;
    s.requestTimeout = 0; // pulls and loads may stream for a long time
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (l.kind === 'unix') server.listen(l.path, () => resolve());
      else server.listen(l.port, l.host, () => resolve());
    }).catch((err) => {
      throw withContext(err, `cannot listen on ${describe(l, false)}`);
    });
    if (l.kind === 'unix') {
      this.sockets.push(l.path);
      await fsp.chmod(l.path, 0o660).catch(() => {});
    }
    this.servers.push(server);
  }

  async close(): Promise<void> {
    for (const sock of this.hijacked) sock.destroy();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            (s as http.Server).closeAllConnections?.();
          }),
      ),
    );
    this.servers.length = 0;
    for (const p of this.sockets) await fsp.rm(p, { force: true }).catch(() => {});
  }
}

/** Removes a socket file nobody listens on; refuses when another process answers on it. */
async function replaceStaleSocket(path: string): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true }).catch((err) => {
    throw withContext(err, `cannot create the directory of ${path}`);
  });
  const st = await fsp.lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new KrError('conflict', `${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new KrError('conflict', `another daemon is listening on ${path}`);
  await fsp.rm(path, { force: true });
}
