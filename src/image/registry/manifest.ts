// Fetching manifests: ask for every schema-2/OCI type, check the bytes against the digest we
// asked for (or the one the registry claims), and pick one platform out of an index.
import { createHash } from 'node:crypto';
import { KrError } from '../../util/errors.ts';
import { MediaType, type Descriptor, type Index, type Manifest, type Platform } from '../types.ts';
import type { RegistryClient } from './client.ts';
import { readBody, discard } from './http.ts';
import { headerString } from './client.ts';

export const MANIFEST_ACCEPT = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList].join(', ');

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  /** Parsed document: an Index when isIndex, else a Manifest. */
  doc: Manifest | Index;
  isIndex: boolean;
}

export function isIndexMediaType(t: string | undefined): boolean {
  return t === MediaType.ociIndex || t === MediaType.dockerManifestList;
}

/** GET /v2/<name>/manifests/<reference>; `reference` is a tag or a digest. */
export async function fetchManifest(client: RegistryClient, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
  const image = `image ${client.ref.name}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  const res = await client.request('GET', client.url(`manifests/${reference}`), { headers: { accept: MANIFEST_ACCEPT }, signal });
  if (res.status === 404) {
    discard(res);
    throw new KrError('not-found', `${image} not found`);
  }
  if (res.status !== 200) throw await client.fail(res, image);
  const bytes = await readBody(res, 4 << 20);
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  const claimed = headerString(res.headers['docker-content-digest']);
  if (reference.startsWith('sha256:') && reference !== digest) {
    throw new KrError('corrupt', `manifest ${reference} from ${client.ref.registry}: digest mismatch (content is ${digest})`);
  }
  if (claimed?.startsWith('sha256:') && claimed !== digest) {
    throw new KrError('corrupt', `manifest of ${image} from ${client.ref.registry}: digest mismatch (registry says ${claimed}, content is ${digest})`);
  }

  let doc: (Manifest | Index) & { schemaVersion?: number; mediaType?: string };
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new KrError('corrupt', `manifest of ${image} is not valid JSON`);
  }
  if (doc.schemaVersion !== 2) {
    throw new KrError('invalid', `${image} uses manifest schema ${doc.schemaVersion ?? '?'}; only schema 2 and OCI are supported`);
  }
  const contentType = headerString(res.headers['content-type'])?.split(';')[0].trim();
  const mediaType = doc.mediaType ?? (contentType && contentType !== 'application/json' ? contentType : undefined) ??
    ('manifests' in doc ? MediaType.ociIndex : MediaType.ociManifest);
  const isIndex = isIndexMediaType(mediaType) || ('manifests' in doc && Array.isArray(doc.manifests));
  if (!isIndex && !('config' in doc && doc.config && Array.isArray((doc as Manifest).layers))) {
    throw new KrError('corrupt', `manifest of ${image} has no config or layers`);
  }
  return { bytes, digest, mediaType, doc, isIndex };
}

/** "linux/arm64/v8" → Platform. */
export function parsePlatformString(s: string): Platform {
  const [os, architecture, variant, ...rest] = s.split('/');
  if (!os || !architecture || rest.length > 0) throw new KrError('invalid', `invalid platform "${s}": expected os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

// arm64 images are usually published with variant v8 or none at all; treat those as equal.
function variantMatches(want: Platform, have: Platform): boolean {
  if (!want.variant) return true;
  if (want.variant === have.variant) return true;
  return want.architecture === 'arm64' && want.variant === 'v8' && !have.variant;
}

/** The index entry for `want`; KrError('not-found') listing what the index offers otherwise. */
export function selectPlatform(index: Index, want: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter((d) => !isIndexMediaType(d.mediaType) && d.platform);
  const match = candidates.find((d) => d.platform!.os === want.os && d.platform!.architecture === want.architecture && variantMatches(want, d.platform!));
  if (match) return match;
  // Attestation manifests (buildkit's "unknown/unknown") are not images: leave them out of the list.
  const offered = candidates.map((d) => formatPlatform(d.platform)).filter((p) => p !== 'unknown/unknown');
  throw new KrError('not-found', `${what} has no image for platform ${formatPlatform(want)} (available: ${offered.join(', ') || 'none'})`);
}
