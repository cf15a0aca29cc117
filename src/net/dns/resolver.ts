// The embedded DNS of a user-defined network, as docker's 127.0.0.11: container names, aliases
// and short IDs on that network resolve to their addresses there (A; AAAA and other types get an
// empty answer), unknown single-label names get NXDOMAIN, and names with a dot are forwarded to
// the resolvers of krd's own /etc/resolv.conf.
//
// Where it listens: on the network's gateway address, port 53, in krd's namespace, one UDP socket
// per network — not on 127.0.0.11 inside every container, which would need a DNAT rule (and an
// iptables run) in each container's namespace at every create. Since the socket belongs to one
// network, the answer is scoped to that network by construction. Containers get the gateway as
// their nameserver (src/engine/networks/container-files.ts).
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { buildResponse, parseQuery, RCODE_NXDOMAIN, RCODE_OK, RCODE_SERVFAIL, TYPE_A, TYPE_PTR, type Answer } from './packet.ts';

export interface NameTable {
  /** Addresses of a name (already lower case) on this network; empty when unknown. */
  addresses(name: string): string[];
  /** The name of an address on this network (reverse lookups), if any. */
  nameOf(ip: string): string | undefined;
}

/** Nameservers of krd's resolv.conf; loopback ones would loop back into nothing useful. */
export function upstreamServers(file = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]).filter((s) => /^\d+\.\d+\.\d+\.\d+$/.test(s) && !s.startsWith('127.'));
}

export class NetworkResolver {
  private readonly socket: Socket;
  private readonly table: NameTable;
  private readonly upstream: string[];

  private constructor(socket: Socket, table: NameTable, upstream: string[]) {
    this.socket = socket;
    this.table = table;
    this.upstream = upstream;
    socket.on('message', (msg, from) => void this.answer(msg, from.address, from.port));
    socket.on('error', () => undefined);
  }

  static listen(address: string, table: NameTable, upstream = upstreamServers()): Promise<NetworkResolver> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(53, address, () => {
        socket.off('error', reject);
        resolve(new NetworkResolver(socket, table, upstream));
      });
    });
  }

  private async answer(msg: Buffer, host: string, port: number): Promise<void> {
    const q = parseQuery(msg);
    if (!q) return;
    const reply = (b: Buffer) => this.socket.send(b, port, host, () => undefined);
    const ptr = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa$/.exec(q.name);
    if (ptr) {
      const name = this.table.nameOf(`${ptr[4]}.${ptr[3]}.${ptr[2]}.${ptr[1]}`);
      if (name) return reply(buildResponse(q, RCODE_OK, q.type === TYPE_PTR ? [{ type: TYPE_PTR, name }] : []));
    }
    const ips = this.table.addresses(q.name);
    if (ips.length > 0) {
      const answers: Answer[] = q.type === TYPE_A ? ips.map((ip) => ({ type: TYPE_A, ip })) : [];
      return reply(buildResponse(q, RCODE_OK, answers));
    }
    if (!q.name.includes('.') && !ptr) return reply(buildResponse(q, RCODE_NXDOMAIN));
    reply((await this.forward(msg)) ?? buildResponse(q, RCODE_SERVFAIL));
  }

  /** The first upstream answer, each server tried in turn with a 2 s wait. */
  private async forward(msg: Buffer): Promise<Buffer | undefined> {
    for (const server of this.upstream) {
      const answer = await new Promise<Buffer | undefined>((resolve) => {
        const s = createSocket('udp4');
        const done = (b?: Buffer) => {
          clearTimeout(timer);
          s.close();
          resolve(b);
        };
        const timer = setTimeout(() => done(), 2000);
        s.on('error', () => done());
        s.on('message', (b) => done(b));
        s.send(msg, 53, server, (err) => err && done());
      });
      if (answer) return answer;
    }
    return undefined;
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
