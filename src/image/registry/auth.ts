// Registry authentication driven by the 401 challenge (docker's token flow):
//   Bearer realm="…",service="…"  → GET realm?service=…&scope=repository:<name>:pull[,push]
//                                    (with basic credentials if we have them) → {token|access_token}
//   Basic realm="…"               → send the credentials on every request
// Tokens are cached per scope until shortly before they expire.
import { KrError } from '../../util/errors.ts';
import type { Credentials } from './credentials.ts';
import { send, readBody, discard } from './http.ts';

export interface Challenge {
  scheme: string; // lower case: "bearer", "basic"
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header (one or more challenges with auth-params). */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  // Tokens: a quoted string, "=", ",", or a bare word.
  const tokens = header.match(/"(?:[^"\\]|\\.)*"|=|,|[^\s=,"]+/g) ?? [];
  let current: Challenge | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    if (tok === ',') continue;
    if (tokens[i + 1] === '=' && current) {
      let value = tokens[i + 2] ?? '';
      if (value.startsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
      current.params[tok.toLowerCase()] = value;
      i += 2;
    } else {
      current = { scheme: tok.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

function basicHeader(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

/** Holds what one registry host asked for and the tokens it handed out. */
export class Authenticator {
  private readonly registry: string;
  private readonly credentials: Credentials | undefined;
  private mode: 'none' | 'basic' | 'bearer' = 'none';
  private bearer: Challenge | undefined;
  private readonly tokens = new Map<string, { header: string; expires: number }>();
  // Parallel requests hitting 401 together share one token request.
  private readonly pending = new Map<string, Promise<string>>();

  constructor(registry: string, credentials: Credentials | undefined) {
    this.registry = registry;
    this.credentials = credentials;
  }

  get hasCredentials(): boolean {
    return this.credentials !== undefined;
  }

  /** The Authorization header to send for `scope`, if we already know one. */
  headerFor(scope: string): string | undefined {
    if (this.mode === 'basic' && this.credentials) return basicHeader(this.credentials);
    if (this.mode === 'bearer') {
      const cached = this.tokens.get(scope);
      if (cached && cached.expires > Date.now()) return cached.header;
    }
    return undefined;
  }

  /**
   * Answers a 401: learns the challenge and obtains what it asks for. Returns the header to
   * retry with, or undefined when there is nothing new to try (e.g. Basic without credentials).
   */
  async answer(wwwAuthenticate: string | undefined, scope: string, signal?: AbortSignal): Promise<string | undefined> {
    const challenges = parseChallenges(wwwAuthenticate ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer && bearer.params.realm) {
      this.mode = 'bearer';
      this.bearer = bearer;
      let inflight = this.pending.get(scope);
      if (!inflight) {
        inflight = this.fetchToken(scope, signal).finally(() => this.pending.delete(scope));
        this.pending.set(scope, inflight);
      }
      return inflight;
    }
    if (basic) {
      this.mode = 'basic';
      return this.credentials ? basicHeader(this.credentials) : undefined;
    }
    throw new KrError('unauthorized', `registry ${this.registry} asks for an authentication scheme kraud does not speak: ${wwwAuthenticate ?? '(none)'}`);
  }

  private async fetchToken(scope: string, signal?: AbortSignal): Promise<string> {
    const challenge = this.bearer!;
    let url: URL;
    try {
      url = new URL(challenge.params.realm);
    } catch {
      throw new KrError('unauthorized', `registry ${this.registry} names an invalid token realm "${challenge.params.realm}"`);
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.credentials) headers.authorization = basicHeader(this.credentials);
    const res = await send({ method: 'GET', url, headers, signal });
    if (res.status === 401 || res.status === 403) {
      discard(res);
      throw new KrError(
        'unauthorized',
        this.credentials
          ? `registry ${this.registry}: token server ${url.host} refused the credentials for user "${this.credentials.username}"`
          : `registry ${this.registry}: token server ${url.host} requires credentials (none configured)`,
      );
    }
    if (res.status !== 200) {
      discard(res);
      throw new KrError('unavailable', `registry ${this.registry}: token server ${url.host} answered HTTP ${res.status}`);
    }
    let doc: { token?: string; access_token?: string; expires_in?: number };
    try {
      doc = JSON.parse((await readBody(res, 1 << 20)).toString('utf8'));
    } catch {
      throw new KrError('unavailable', `registry ${this.registry}: token server ${url.host} sent no JSON`);
    }
    const token = doc.token || doc.access_token;
    if (!token) throw new KrError('unavailable', `registry ${this.registry}: token server ${url.host} sent no token`);
    // The spec's default lifetime is 60 s; renew 10 s early so a long pull never sends a stale one.
    const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    const header = `Bearer ${token}`;
    this.tokens.set(scope, { header, expires: Date.now() + Math.max(lifetime - 10, 5) * 1000 });
    return header;
  }
}
