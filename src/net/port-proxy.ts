// Published ports (-p) as a userspace proxy in krd, like docker's docker-proxy, rather than
// iptables DNAT. Why: it works the same for every way a client can arrive — another host, the
// namespace's own addresses and 127.0.0.1 (DNAT of locally generated traffic to loopback needs
// route_localnet and extra MASQUERADE rules), and a container reaching its own published port
// (hairpin) — and it leaves no kernel state to clean after a kill -9: the listening socket
// dies with krd and is bound again on restart. Binding also reserves the host port, and port 0
// gets a free one from the kernel. The cost is a copy through krd per byte (measured in
// README: krd networks) and the container sees the gateway as the client's address.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import { KrError } from '../util/errors.ts';

export interface Forward {
  proto: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  targetIp: string;
  targetPort: number;
}

export interface Proxy {
  /** The bound port (the kernel's choice for hostPort 0). */
  port: number;
  close(): void;
}

export function startProxy(f: Forward): Promise<Proxy> {
  return f.proto === 'tcp' ? tcpProxy(f) : udpProxy(f);
}

function bindError(f: Forward, err: Error): KrError {
  const code = (err as NodeJS.ErrnoException).code;
  const what = `${f.hostIp || '0.0.0.0'}:${f.hostPort}/${f.proto}`;
  return new KrError(code === 'EADDRINUSE' ? 'conflict' : 'unavailable', `driver failed programming external connectivity: Bind for ${what} failed: ${code === 'EADDRINUSE' ? 'port is already allocated' : err.message}`);
}

function tcpProxy(f: Forward): Promise<Proxy> {
  // half-open both ways: a client that sends FIN after its request still gets the whole answer;
  // pipe() passes each end on, and each socket closes once both of its directions are done
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: f.targetIp, port: f.targetPort, allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(bindError(f, err)));
    server.listen({ host: f.hostIp || '0.0.0.0', port: f.hostPort, exclusive: true }, () => {
      server.on('error', () => undefined);
      resolve({ port: (server.address() as { port: number }).port, close: () => server.close() });
    });
  });
}

/** One upstream socket per client address, dropped after a minute without traffic. */
function udpProxy(f: Forward): Promise<Proxy> {
  const front = createSocket('udp4');
  const clients = new Map<string, { sock: UdpSocket; timer: NodeJS.Timeout }>();
  front.on('message', (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let c = clients.get(key);
    if (!c) {
      const sock = createSocket('udp4');
      sock.on('message', (reply) => front.send(reply, from.port, from.address));
      sock.on('error', () => undefined);
      c = { sock, timer: setTimeout(() => undefined, 0) };
      clients.set(key, c);
    }
    clearTimeout(c.timer);
    const entry = c;
    c.timer = setTimeout(() => {
      entry.sock.close();
      clients.delete(key);
    }, 60_000).unref();
    c.sock.send(msg, f.targetPort, f.targetIp);
  });
  return new Promise((resolve, reject) => {
    front.once('error', (err) => reject(bindError(f, err)));
    front.bind({ address: f.hostIp || '0.0.0.0', port: f.hostPort, exclusive: true }, () => {
      front.on('error', () => undefined);
      resolve({
        port: front.address().port,
        close: () => {
          for (const c of clients.values()) {
            clearTimeout(c.timer);
            c.sock.close();
          }
          front.close();
        },
      });
    });
  });
}
