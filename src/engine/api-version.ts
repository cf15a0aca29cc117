// Engine API versions: paths may carry /vX.Y; krd serves MIN_API_VERSION up to API_VERSION (what
// the docker 28 client negotiates to). Messages are dockerd's, word for word.
import { KrError } from '../util/errors.ts';

export const API_VERSION = '1.50';
export const MIN_API_VERSION = '1.41';

function compare(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

/** Splits "/v1.45/images/json" into version "1.45" and path "/images/json"; checks the range. */
export function splitVersion(path: string): { version: string; path: string } {
  const m = /^\/v([0-9]+\.[0-9]+)(\/.*)?$/.exec(path);
  if (!m) {
    if (/^\/v[0-9]/.test(path)) throw new KrError('not-found', 'page not found');
    return { version: API_VERSION, path };
  }
  const version = m[1];
  if (compare(version, MIN_API_VERSION) < 0) {
    throw new KrError('invalid', `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  if (compare(version, API_VERSION) > 0) {
    throw new KrError('invalid', `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  return { version, path: m[2] ?? '/' };
}
