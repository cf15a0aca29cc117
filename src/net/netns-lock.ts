// Mutual exclusion among the krds of one network namespace while they pick subnets and create
// bridges: an abstract unix socket is scoped to the network namespace and released by the kernel
// when its holder dies (even by kill -9), so no lock file can be left behind.
import { createServer } from 'node:net';
import { KrError } from '../util/errors.ts';
import { run } from './cmd.ts';
import { parseCidr, type Cidr } from './ipv4.ts';

const NAME = '\0kraud-network-lock';
let inProcess: Promise<unknown> = Promise.resolve();

export function withNetnsLock<T>(fn: () => Promise<T>): Promise<T> {
  const next = inProcess.then(() => locked(fn));
  inProcess = next.catch(() => undefined);
  return next;
}

async function locked<T>(fn: () => Promise<T>): Promise<T> {
  const server = createServer();
  const deadline = Date.now() + 15_000;
  for (;;) {
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      server.once('error', resolve);
      server.listen(NAME, () => resolve(null));
    });
    if (!err) break;
    if (err.code !== 'EADDRINUSE' || Date.now() > deadline) throw new KrError('unavailable', `network lock: ${err.message}`);
    await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
  }
  try {
    return await fn();
  } finally {
    await new Promise((r) => server.close(r));
  }
}

/** Prefixes already in use in this namespace: routes and interface addresses. */
export async function prefixesInUse(): Promise<Cidr[]> {
  const [routes, addrs] = await Promise.all([run(['ip', '-4', '-o', 'route', 'show', 'table', 'all']).catch(() => ''), run(['ip', '-4', '-o', 'addr', 'show']).catch(() => '')]);
  const out: Cidr[] = [];
  for (const l of routes.split('\n')) {
    const dst = l.split(' ')[0] === 'local' || l.split(' ')[0] === 'broadcast' ? l.split(' ')[1] : l.split(' ')[0];
    if (!dst || dst === 'default' || dst.startsWith('127.')) continue;
    try {
      out.push(parseCidr(dst.includes('/') ? dst : `${dst}/32`, 'route', false));
    } catch {
      // not an address (unreachable, multicast keywords)
    }
  }
  for (const m of addrs.matchAll(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/g)) if (!m[1].startsWith('127.')) out.push(parseCidr(m[1], 'address', false));
  return out;
}
