import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseChallenges } from './auth.ts';
import { findCredentials } from './credentials.ts';
import { isKrError } from '../../util/errors.ts';

test('WWW-Authenticate challenges parse into scheme and params', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="kraud test"'), [{ scheme: 'basic', params: { realm: 'kraud test' } }]);
  assert.deepEqual(parseChallenges('Basic realm="a, b", Bearer realm="http://x/t",error="insufficient_scope"').map((c) => [c.scheme, c.params.realm]), [
    ['basic', 'a, b'],
    ['bearer', 'http://x/t'],
  ]);
  assert.deepEqual(parseChallenges('Bearer realm=unquoted,service=s'), [{ scheme: 'bearer', params: { realm: 'unquoted', service: 's' } }]);
  assert.deepEqual(parseChallenges(''), []);
});

test('docker config credentials: key forms, Docker Hub aliases, missing file', async () => {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'kraud-dockercfg-'));
  const env = { DOCKER_CONFIG: dir };
  assert.equal(await findCredentials('docker.io', env), undefined); // no file: anonymous
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  await fsp.writeFile(join(dir, 'config.json'), JSON.stringify({
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
      'https://reg.example:5000': { auth: b64('a:b') },
      'plain.example': { username: 'u', password: 'p' },
      'empty.example': {},
    },
  }));
  assert.deepEqual(await findCredentials('docker.io', env), { username: 'hubuser', password: 'hub:pass' });
  assert.deepEqual(await findCredentials('reg.example:5000', env), { username: 'a', password: 'b' });
  assert.equal(await findCredentials('reg.example', env), undefined);
  assert.deepEqual(await findCredentials('plain.example', env), { username: 'u', password: 'p' });
  assert.equal(await findCredentials('empty.example', env), undefined);
  await fsp.writeFile(join(dir, 'config.json'), '{not json');
  await assert.rejects(findCredentials('docker.io', env), (e) => isKrError(e, 'invalid'));
});
