// A tiny docker token server on loopback, for testing bearer auth against a real registry
// (distribution 2.8 `auth: token`). It signs RS256 JWTs with a key whose self-signed cert the
// registry trusts via `rootcertbundle`; the JWT header's `kid` is libtrust's key id of that key
// (SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32, groups of 4 joined by ':'),
// which is how 2.8 finds the verifying key among the bundle's certificates.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, createHash, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { base32 } from '@scure/base';

export interface TokenServerOptions {
  dir: string;
  users: { username: string; password: string }[];
  /** Whether requests without credentials get pull access (like public repos on Docker Hub). */
  anonymousPull?: boolean;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Every token request: who asked (undefined = anonymous) and for which scope. */
  requests: { user?: string; scope: string; status: number }[];
  stop(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export function libtrustKeyId(spkiDer: Buffer): string {
  const b32 = base32.encode(createHash('sha256').update(spkiDer).digest().subarray(0, 30)).replace(/=+$/, '');
  return b32.match(/.{4}/g)!.join(':');
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const keyFile = join(opts.dir, 'token.key');
  const certFile = join(opts.dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=kraud-test-token'], { stdio: 'ignore' });
  const privateKey = createPrivateKey(readFileSync(keyFile));
  const kid = libtrustKeyId(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  const service = 'kraud-test-registry';
  const issuer = 'kraud-test-issuer';
  const requests: TokenServer['requests'] = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scope = url.searchParams.getAll('scope').join(' ');
    let user: string | undefined;
    const authz = req.headers.authorization;
    if (authz?.startsWith('Basic ')) {
      const [name, ...rest] = Buffer.from(authz.slice(6), 'base64').toString().split(':');
      const ok = opts.users.some((u) => u.username === name && u.password === rest.join(':'));
      if (!ok) {
        requests.push({ user: name, scope, status: 401 });
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      user = name;
    }
    // Grant what was asked to known users, pull alone to anonymous callers when allowed.
    const access = scope.split(' ').filter(Boolean).map((s) => {
      const [type, name, actions] = [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1, s.lastIndexOf(':')), s.slice(s.lastIndexOf(':') + 1)];
      const asked = actions.split(',');
      const granted = user ? asked : opts.anonymousPull ? asked.filter((a) => a === 'pull') : [];
      return { type, name, actions: granted };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', kid };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signingInput}.${b64url(sign('sha256', Buffer.from(signingInput), privateKey))}`;
    requests.push({ user, scope, status: 200 });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
