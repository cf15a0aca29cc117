// POST /auth (docker login): checks credentials against the registry's /v2/ endpoint. krd keeps
// nothing: the CLI stores them and sends them with each pull (X-Registry-Auth).
import { KrError } from '../../util/errors.ts';
import { parseReference, type InsecureOption } from '../../image/reference.ts';
import { RegistryClient } from '../../image/registry/index.ts';

export async function checkLogin(server: string, username: string, password: string, insecure?: InsecureOption): Promise<void> {
  const host = server.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '') || 'docker.io';
  let ref;
  try {
    ref = parseReference(`${host}/kraud-login-check`);
  } catch {
    throw new KrError('invalid', `invalid registry address ${server}`);
  }
  // A ref on that host only picks the registry; the request goes to /v2/ itself.
  const client = await RegistryClient.create(ref, 'pull', { auth: { username, password }, insecure, env: {} });
  let res;
  try {
    res = await client.request('GET', new URL('/v2/', client.baseUrl));
  } catch (err) {
    if (err instanceof KrError && (err.kind === 'unauthorized' || err.kind === 'denied')) {
      throw new KrError('unauthorized', `login attempt to ${client.baseUrl.href} failed with status: 401 Unauthorized`, { cause: err });
    }
    throw err;
  }
  res.body.resume();
  if (res.status !== 200) {
    throw new KrError(res.status === 401 ? 'unauthorized' : 'unavailable', `login attempt to ${client.baseUrl.href} failed with status: ${res.status}`);
  }
}
