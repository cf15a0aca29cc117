// A client for one repository on one registry (OCI distribution spec): every request goes
// through `request`, which adds auth (answering 401 challenges once), follows redirects and
// turns HTTP failures into KrErrors. Pull and push are written on top of it.
import type { Readable } from 'node:stream';
import { KrError } from '../../util/errors.ts';
import { registryScheme, type ImageReference, type InsecureOption } from '../reference.ts';
import { Authenticator } from './auth.ts';
import { findCredentials, type Credentials } from './credentials.ts';
import { send, discard, registryErrorOf, type HttpResponse } from './http.ts';

export interface ClientOptions {
  /** Hosts (or true for all) that may be spoken to over plain HTTP; loopback always may. */
  insecure?: InsecureOption;
  /** Explicit credentials; otherwise the docker config file is read. */
  auth?: Credentials;
  /** Environment used to find the docker config (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  signal?: AbortSignal;
}

const MAX_REDIRECTS = 5;
// Authenticators are shared per registry host so tokens survive across clients of one process.
const authenticators = new Map<string, Authenticator>();

export class RegistryClient {
  readonly ref: ImageReference;
  readonly baseUrl: URL;
  private readonly scope: string;
  private readonly auth: Authenticator;

  private constructor(ref: ImageReference, baseUrl: URL, scope: string, auth: Authenticator) {
    this.ref = ref;
    this.baseUrl = baseUrl;
    this.scope = scope;
    this.auth = auth;
  }

  /** A client for ref's repository; `push` asks tokens for pull,push instead of pull. */
  static async create(ref: ImageReference, actions: 'pull' | 'push', opts: ClientOptions = {}): Promise<RegistryClient> {
    const host = ref.apiHost;
    const baseUrl = new URL(`${registryScheme(host, opts.insecure)}://${host}/v2/`);
    const credentials = opts.auth ?? (await findCredentials(ref.registry, opts.env));
    const key = `${baseUrl.origin} ${credentials ? `${credentials.username}:${credentials.password}` : ''}`;
    let auth = authenticators.get(key);
    if (!auth) {
      auth = new Authenticator(ref.registry, credentials);
      authenticators.set(key, auth);
    }
    const scope = `repository:${ref.repository}:${actions === 'push' ? 'pull,push' : 'pull'}`;
    return new RegistryClient(ref, baseUrl, scope, auth);
  }

  /** URL of a path under /v2/<repository>/ ("manifests/tag", "blobs/uploads/"). */
  url(path: string): URL {
    return new URL(`${this.ref.repository}/${path}`, this.baseUrl);
  }

  /**
   * Sends a request, authenticating and following redirects. Returns any non-401 response;
   * callers check the status (see `fail` for the usual mapping).
   */
  async request(method: string, target: URL, opts: RequestOptions = {}): Promise<HttpResponse> {
    let url = target;
    let authHeader = this.auth.headerFor(this.scope);
    let answered = false;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { ...opts.headers };
      // Credentials go only to the registry itself, never to a redirect target elsewhere (S3, CDN).
      if (authHeader && url.origin === this.baseUrl.origin) headers.authorization = authHeader;
      const res = await send({ method, url, headers, body: opts.body, signal: opts.signal });

      if (res.status === 401 && url.origin === this.baseUrl.origin) {
        const canResend = opts.body === undefined || Buffer.isBuffer(opts.body);
        if (answered || !canResend) throw await this.unauthorized(res);
        discard(res);
        answered = true;
        authHeader = await this.auth.answer(headerString(res.headers['www-authenticate']), this.scope, opts.signal);
        if (authHeader === undefined) throw await this.unauthorized(res);
        hop--; // an auth retry is not a redirect
        continue;
      }
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(res.status) && location && (method === 'GET' || method === 'HEAD')) {
        discard(res);
        url = new URL(location, url);
        continue;
      }
      return res;
    }
    throw new KrError('unavailable', `registry ${this.ref.registry}: too many redirects for ${target.pathname}`);
  }

  /** The error for an unexpected response; consumes the body. */
  async fail(res: HttpResponse, what: string): Promise<KrError> {
    const reg = this.ref.registry;
    const err = await registryErrorOf(res);
    const detail = err.message ? `: ${err.message}` : '';
    switch (res.status) {
      case 401:
        return this.unauthorized(res);
      case 403:
        return new KrError('denied', `registry ${reg} denied access to ${this.ref.repository} (${what})${detail}`);
      case 404:
        return new KrError('not-found', `${what} not found on ${reg}${detail}`);
      case 429:
        return new KrError('unavailable', `registry ${reg}: too many requests (${what})`);
      default:
        if (res.status >= 500) return new KrError('unavailable', `registry ${reg} failed (${what}): HTTP ${res.status}${detail}`);
        return new KrError('invalid', `registry ${reg} rejected ${what}: HTTP ${res.status}${detail}`);
    }
  }

  private async unauthorized(res: HttpResponse): Promise<KrError> {
    const err = res.body.readableEnded ? {} : await registryErrorOf(res);
    const reg = this.ref.registry;
    if (err.code === 'DENIED') return new KrError('denied', `registry ${reg} denied access to ${this.ref.repository}${err.message ? `: ${err.message}` : ''}`);
    return new KrError(
      'unauthorized',
      this.auth.hasCredentials
        ? `registry ${reg} refused the credentials for ${this.ref.repository}`
        : `registry ${reg} requires authentication for ${this.ref.repository} (no credentials configured)`,
    );
  }
}

export function headerString(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
