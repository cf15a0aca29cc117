import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference, isLoopbackHost, registryScheme } from './reference.ts';
import { isKrError } from '../util/errors.ts';

const D = 'sha256:' + 'a'.repeat(64);

test('short names go to Docker Hub library with tag latest', () => {
  const r = parseReference('alpine');
  assert.equal(r.registry, 'docker.io');
  assert.equal(r.apiHost, 'registry-1.docker.io');
  assert.equal(r.repository, 'library/alpine');
  assert.equal(r.tag, 'latest');
  assert.equal(r.digest, undefined);
  assert.equal(r.toString(), 'alpine:latest');
  assert.equal(r.canonical, 'docker.io/library/alpine:latest');
  assert.equal(r.manifestRef, 'latest');
});

test('user repositories and explicit docker.io forms', () => {
  const r = parseReference('user/repo:1.2');
  assert.deepEqual([r.registry, r.repository, r.tag], ['docker.io', 'user/repo', '1.2']);
  assert.equal(r.toString(), 'user/repo:1.2');
  assert.equal(parseReference('docker.io/library/alpine:3').toString(), 'alpine:3');
  assert.equal(parseReference('index.docker.io/library/alpine').canonical, 'docker.io/library/alpine:latest');
  assert.equal(parseReference('docker.io/alpine').repository, 'library/alpine');
});

test('registry hosts with ports and localhost', () => {
  const a = parseReference('host:5000/x/y:tag');
  assert.deepEqual([a.registry, a.repository, a.tag], ['host:5000', 'x/y', 'tag']);
  assert.equal(a.apiHost, 'host:5000');
  assert.equal(a.toString(), 'host:5000/x/y:tag');
  const b = parseReference('localhost/x');
  assert.deepEqual([b.registry, b.repository, b.tag], ['localhost', 'x', 'latest']);
  const c = parseReference('localhost:5000/x');
  assert.deepEqual([c.registry, c.repository], ['localhost:5000', 'x']);
  const d = parseReference('ghcr.io/o/r');
  assert.equal(d.registry, 'ghcr.io');
  const e = parseReference('127.0.0.1:5000/a/b/c:v1');
  assert.deepEqual([e.registry, e.repository, e.tag], ['127.0.0.1:5000', 'a/b/c', 'v1']);
  // A first component without "." or ":" is a namespace, not a host.
  assert.equal(parseReference('myhost/x').registry, 'docker.io');
});

test('digests, with and without a tag', () => {
  const a = parseReference(`x@${D}`);
  assert.equal(a.tag, undefined);
  assert.equal(a.digest, D);
  assert.equal(a.manifestRef, D);
  assert.equal(a.toString(), `x@${D}`);
  assert.equal(a.canonical, `docker.io/library/x@${D}`);
  const b = parseReference(`localhost:5000/x:tag@${D}`);
  assert.equal(b.tag, 'tag');
  assert.equal(b.digest, D);
  assert.equal(b.manifestRef, D);
  assert.equal(b.canonical, `localhost:5000/x:tag@${D}`);
});

test('invalid references throw one-line KrError invalid', () => {
  const bad = [
    '', 'Alpine', 'user/Repo', 'x:', 'x:-tag', 'x:' + 't'.repeat(129), 'x@sha256:abc', `x@sha256:${'A'.repeat(64)}`,
    'x@md5:' + 'a'.repeat(32), 'x//y', 'x/', '/x', 'x__-y', 'a'.repeat(64), 'host:5000/', 'x:tag:more',
  ];
  for (const input of bad) {
    assert.throws(() => parseReference(input), (err: unknown) => {
      assert.ok(isKrError(err, 'invalid'), `expected KrError invalid for ${JSON.stringify(input)}, got ${String(err)}`);
      assert.ok(!err.message.includes('\n'));
      return true;
    });
  }
  assert.match(errorOf(() => parseReference('Alpine')), /lowercase/);
  assert.match(errorOf(() => parseReference('x@sha256:abc')), /64 lowercase hex/);
  assert.match(errorOf(() => parseReference('x:-t')), /invalid tag "-t"/);
});

test('loopback detection and scheme choice', () => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]:5000', '::1']) {
    assert.ok(isLoopbackHost(h), h);
    assert.equal(registryScheme(h), 'http');
  }
  for (const h of ['docker.io', 'registry-1.docker.io', '10.0.0.1:5000', '128.0.0.1', '127.0.0.256', 'localhostx']) {
    assert.ok(!isLoopbackHost(h), h);
    assert.equal(registryScheme(h), 'https');
  }
  assert.equal(registryScheme('reg.lan:5000', true), 'http');
  assert.equal(registryScheme('reg.lan:5000', ['reg.lan']), 'http');
  assert.equal(registryScheme('reg.lan:5000', ['reg.lan:5000']), 'http');
  assert.equal(registryScheme('reg.lan:5000', ['other']), 'https');
  assert.equal(registryScheme('reg.lan:5000', false), 'https');
});

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}
