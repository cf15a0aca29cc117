// Image references parsed the way the docker CLI parses them (distribution/reference grammar):
//   [registry[:port]/]path[:tag][@sha256:hex]
// A first path component is a registry host only when it contains "." or ":" or is "localhost",
// so `user/repo` stays on Docker Hub while `localhost:5000/x` and `host.io/x` do not.
import { KrError } from '../util/errors.ts';

export const DOCKER_HUB = 'docker.io';
/** Docker Hub's registry API lives on a different host than its name. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

// One path component: lowercase alphanumerics joined by ".", "_", "__" or runs of "-".
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
// Host: DNS labels (any case, as docker accepts) or a bracketed IPv6 address, optional port.
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$/;
const MAX_NAME = 255;

export class ImageReference {
  /** Registry name as the user means it: "docker.io", "localhost:5000", "ghcr.io". */
  readonly registry: string;
  /** Repository path inside the registry: "library/alpine", "x/y". */
  readonly repository: string;
  /** Tag, if any. "latest" is filled in only when neither tag nor digest was given. */
  readonly tag: string | undefined;
  /** "sha256:<hex>", if the reference pins one. */
  readonly digest: string | undefined;

  constructor(registry: string, repository: string, tag?: string, digest?: string) {
    this.registry = registry;
    this.repository = repository;
    this.tag = tag;
    this.digest = digest;
  }

  /** Host to send registry API requests to (Docker Hub's name differs from its API host). */
  get apiHost(): string {
    return this.registry === DOCKER_HUB ? DOCKER_HUB_API : this.registry;
  }

  /** What goes after /manifests/: the digest when pinned (it wins over the tag), else the tag. */
  get manifestRef(): string {
    return this.digest ?? this.tag ?? 'latest';
  }

  /** Fully qualified name without tag or digest: "docker.io/library/alpine". */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** Fully qualified form: "docker.io/library/alpine:latest", "h:5000/x@sha256:…". */
  get canonical(): string {
    return this.name + this.suffix();
  }

  /** The short name docker shows: drops "docker.io/" and "library/". */
  get familiarName(): string {
    if (this.registry !== DOCKER_HUB) return this.name;
    return this.repository.startsWith('library/') && this.repository.split('/').length === 2
      ? this.repository.slice('library/'.length)
      : this.repository;
  }

  /** Familiar form as docker prints it: "alpine:latest", "user/repo:tag", "localhost:5000/x:1". */
  toString(): string {
    return this.familiarName + this.suffix();
  }

  /** The same repository with another tag (and no digest). */
  withTag(tag: string): ImageReference {
    if (!TAG.test(tag)) throw new KrError('invalid', `invalid tag "${tag}"`);
    return new ImageReference(this.registry, this.repository, tag, undefined);
  }

  /** The same repository pinned to a digest (keeps the tag for display). */
  withDigest(digest: string): ImageReference {
    if (!DIGEST.test(digest)) throw new KrError('invalid', `invalid digest "${digest}"`);
    return new ImageReference(this.registry, this.repository, this.tag, digest);
  }

  private suffix(): string {
    return (this.tag !== undefined ? `:${this.tag}` : '') + (this.digest !== undefined ? `@${this.digest}` : '');
  }
}

/** Parses a docker image reference; throws KrError('invalid') with the reason on bad input. */
export function parseReference(input: string): ImageReference {
  const ref = input.trim();
  if (ref === '') throw new KrError('invalid', 'invalid reference: empty');
  const bad = (why: string) => new KrError('invalid', `invalid reference "${input}": ${why}`);

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/.test(digest)) throw bad(`malformed digest "${digest}"`);
    if (!digest.startsWith('sha256:')) throw bad(`unsupported digest algorithm in "${digest}" (only sha256)`);
    if (!DIGEST.test(digest)) throw bad(`digest "${digest}" must be sha256: followed by 64 lowercase hex characters`);
  }

  // A tag is whatever follows the last ":" that comes after the last "/" (a port's ":" precedes a "/").
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`invalid tag "${tag}" (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`);
  }

  let registry = DOCKER_HUB;
  let path = rest;
  const firstSlash = rest.indexOf('/');
  if (firstSlash >= 0) {
    const first = rest.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!HOST.test(first)) throw bad(`invalid registry host "${first}"`);
      registry = first;
      path = rest.slice(firstSlash + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;

  if (path === '') throw bad('missing repository name');
  if (/^[a-f0-9]{64}$/.test(path) && registry === DOCKER_HUB && tag === undefined && digest === undefined) {
    throw bad('a 64-character hex string is an image ID, not a repository name');
  }
  for (const component of path.split('/')) {
    if (component === '') throw bad('empty path component');
    if (component !== component.toLowerCase()) throw bad('repository name must be lowercase');
    if (!COMPONENT.test(component)) throw bad(`invalid path component "${component}"`);
  }
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > MAX_NAME) throw bad(`name longer than ${MAX_NAME} characters`);

  if (tag === undefined && digest === undefined) tag = 'latest';
  return new ImageReference(registry, path, tag, digest);
}

/** Hostname part of "host", "host:port", "[v6]:port". */
export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(1, end) : host;
  }
  const parts = host.split(':');
  // More than one ":" without brackets is a bare IPv6 address, which carries no port.
  return parts.length === 2 ? parts[0] : host;
}

/** localhost, 127.0.0.0/8 and ::1 — where docker talks plain HTTP without being told. */
export function isLoopbackHost(host: string): boolean {
  const h = hostWithoutPort(host).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return v4 !== null && v4.slice(1).every((n) => Number(n) <= 255);
}

/** `true` = every registry may use plain HTTP; a list names the hosts (with or without port) that may. */
export type InsecureOption = boolean | readonly string[];

/** Plain HTTP for loopback registries and those the caller marked insecure; HTTPS for the rest. */
export function registryScheme(host: string, insecure?: InsecureOption): 'http' | 'https' {
  if (isLoopbackHost(host)) return 'http';
  if (insecure === true) return 'http';
  if (Array.isArray(insecure)) {
    const bare = hostWithoutPort(host);
    if (insecure.some((h) => h === host || h === bare)) return 'http';
  }
  return 'https';
}
