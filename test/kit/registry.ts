// A real registry for tests and benchmarks: Debian's docker-registry (distribution 2.8) on
// 127.0.0.1 with a free port and a temp storage dir, optionally behind htpasswd basic auth or
// token auth. `await startRegistry()` → { host: '127.0.0.1:PORT', stop() }.
import { execFileSync, spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTokenServer, type TokenServer } from './token-server.ts';

export interface RegistryOptions {
  /** Basic auth users (bcrypt htpasswd made with `htpasswd -Bbn`). */
  users?: { username: string; password: string }[];
  /** Token auth: a loopback token server (see token-server.ts) issues JWTs the registry trusts. */
  tokenAuth?: { users: { username: string; password: string }[]; anonymousPull?: boolean };
  /** Storage directory; a fresh temp dir (removed by stop()) when absent. */
  storageDir?: string;
}

export interface TestRegistry {
  /** "127.0.0.1:PORT": use as the registry part of references. */
  host: string;
  port: number;
  /** Where the registry keeps blobs (docker/registry/v2/blobs/sha256/xx/<hex>/data). */
  storageDir: string;
  /** The token server, when tokenAuth was asked for (its log of requests helps assertions). */
  tokenServer?: TokenServer;
  /** Path of a blob's data file inside storageDir. */
  blobFile(digest: string): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const work = await fsp.mkdtemp(join(tmpdir(), 'kraud-registry-'));
  const storageDir = opts.storageDir ?? join(work, 'storage');
  await fsp.mkdir(storageDir, { recursive: true });

  let auth = '';
  if (opts.users?.length) {
    const lines = opts.users.map((u) => execFileSync('htpasswd', ['-Bbn', u.username, u.password], { encoding: 'utf8' }).trim());
    const file = join(work, 'htpasswd');
    await fsp.writeFile(file, lines.join('\n') + '\n');
    auth = `auth:\n  htpasswd:\n    realm: kraud-test\n    path: ${file}\n`;
  }
  let tokenServer: TokenServer | undefined;
  if (opts.tokenAuth) {
    tokenServer = await startTokenServer({ dir: work, ...opts.tokenAuth });
    const t = tokenServer;
    auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
  }

  // Retry on a lost port race: another process may grab the port between probe and bind.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = join(work, 'config.yml');
    await fsp.writeFile(
      config,
      `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${storageDir}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`,
    );
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    let exited = false;
    child.on('exit', () => (exited = true));
    const host = `127.0.0.1:${port}`;
    const ready = await waitForV2(host, () => exited);
    if (!ready) {
      child.kill('SIGKILL');
      if (attempt < 3 && /address already in use/.test(log)) continue;
      await tokenServer?.stop();
      await fsp.rm(work, { recursive: true, force: true });
      throw new Error(`docker-registry did not start on ${host}: ${log.trim().split('\n').slice(-3).join(' | ')}`);
    }
    return {
      host,
      port,
      storageDir,
      tokenServer,
      blobFile: (digest) => {
        const hex = digest.replace(/^sha256:/, '');
        return join(storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
      },
      stop: async () => {
        if (!exited) {
          const gone = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await gone;
        }
        await tokenServer?.stop();
        await fsp.rm(work, { recursive: true, force: true });
      },
    };
  }
}

/** Polls GET /v2/ until the registry answers (200, or 401 when auth is on). */
async function waitForV2(host: string, dead: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && !dead()) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
