// The registry client against real peers: Debian's docker-registry 2.8 on loopback (plain,
// htpasswd basic auth, token auth) and skopeo in both directions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pull, push, pushManifest } from '../src/image/registry/index.ts';
import { BlobStore } from '../src/image/store.ts';
import { MediaType, type Image, type Index } from '../src/image/types.ts';
import { isKrError } from '../src/util/errors.ts';
import type { ProgressEvent } from '../src/util/progress.ts';
import { freePort, startRegistry, type TestRegistry } from './kit/registry.ts';
import { blobBytes, randomImage, writeOciDir } from './kit/random-image.ts';

const run = promisify(execFile);
const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const tmp = (p: string) => fsp.mkdtemp(join(tmpdir(), p));
const newStore = async () => BlobStore.open(await tmp('kraud-pull-store-'));

async function storedBytes(store: BlobStore, digest: string): Promise<Buffer> {
  return store.readBytes(digest);
}

async function assertSameImage(store: BlobStore, pulled: Image, pushed: Image): Promise<void> {
  assert.equal(pulled.manifestDigest, pushed.manifestDigest);
  assert.deepEqual(pulled.manifestBytes, pushed.manifestBytes);
  assert.deepEqual(pulled.configBytes, pushed.configBytes);
  for (const layer of pushed.layers) {
    const bytes = await storedBytes(store, layer.descriptor.digest);
    assert.equal(sha256(bytes), layer.descriptor.digest);
    assert.deepEqual(bytes, await blobBytes(pushed, layer.descriptor.digest));
  }
}

describe('plain loopback registry', () => {
  let reg: TestRegistry;
  before(async () => (reg = await startRegistry()));
  after(async () => reg?.stop());

  test('push a random image, pull it back, second pull says Already exists', async () => {
    const image = await randomImage({ layers: 3, layerSize: 300 << 10 });
    const ref = `${reg.host}/kraud/roundtrip:v1`;
    const pushEvents: ProgressEvent[] = [];
    const pushed = await push(image, ref, { progress: (e) => pushEvents.push(e) });
    assert.equal(pushed.digest, image.manifestDigest);
    assert.equal(pushed.reference.toString(), `${ref}@${image.manifestDigest}`);
    for (const l of image.layers) {
      const id = l.descriptor.digest.slice(7, 19);
      assert.ok(pushEvents.some((e) => e.id === id && e.status === 'Pushed'), `Pushed for ${id}`);
      assert.ok(pushEvents.some((e) => e.id === id && e.status === 'Pushing' && e.total === l.descriptor.size));
    }

    const store = await newStore();
    const events: ProgressEvent[] = [];
    const pulled = await pull(ref, { store, progress: (e) => events.push(e) });
    await assertSameImage(store, pulled, image);
    assert.equal(await store.getRef(`${reg.host}/kraud/roundtrip:v1`), image.manifestDigest);
    for (const l of image.layers) {
      const id = l.descriptor.digest.slice(7, 19);
      const mine = events.filter((e) => e.id === id).map((e) => e.status);
      assert.deepEqual([...new Set(mine)], ['Waiting', 'Downloading', 'Verifying Checksum', 'Download complete', 'Pull complete']);
      const last = events.filter((e) => e.id === id && e.status === 'Downloading').at(-1)!;
      assert.deepEqual([last.current, last.total], [l.descriptor.size, l.descriptor.size]);
    }
    // Layers read back through the returned Image come from the store.
    const chunks: Buffer[] = [];
    for await (const c of await pulled.layers[0].open()) chunks.push(c as Buffer);
    assert.equal(sha256(Buffer.concat(chunks)), image.layers[0].descriptor.digest);

    const again: ProgressEvent[] = [];
    await pull(ref, { store, progress: (e) => again.push(e) });
    assert.deepEqual(again.map((e) => e.status), image.layers.map(() => 'Already exists'));

    const repush: ProgressEvent[] = [];
    await push(image, `${reg.host}/kraud/roundtrip:v2`, { progress: (e) => repush.push(e) });
    assert.deepEqual(repush.map((e) => e.status), image.layers.map(() => 'Layer already exists'));

    // By digest, too: the ref is the canonical name with the digest.
    const byDigest = await pull(`${reg.host}/kraud/roundtrip@${image.manifestDigest}`, { store: await newStore() });
    assert.equal(byDigest.manifestDigest, image.manifestDigest);
  });

  test('Docker schema 2 manifests round-trip with their media type', async () => {
    const image = await randomImage({ layers: 1, format: 'docker' });
    await push(image, `${reg.host}/kraud/docker:v1`);
    const store = await newStore();
    const pulled = await pull(`${reg.host}/kraud/docker:v1`, { store });
    assert.equal(pulled.manifest.mediaType, MediaType.dockerManifest);
    await assertSameImage(store, pulled, image);
  });

  test('a blob corrupted in the registry → corrupt error, nothing stored, no ref', async () => {
    const image = await randomImage({ layers: 2, layerSize: 100 << 10 });
    const ref = `${reg.host}/kraud/corrupt:v1`;
    await push(image, ref);
    const bad = image.layers[1].descriptor;
    const file = reg.blobFile(bad.digest);
    const original = await fsp.readFile(file);
    const flipped = Buffer.from(original);
    flipped[flipped.length >> 1] ^= 0xff; // same size, different bytes
    await fsp.writeFile(file, flipped);
    try {
      const store = await newStore();
      await assert.rejects(pull(ref, { store }), (err) => {
        assert.ok(isKrError(err, 'corrupt'), String(err));
        assert.equal(err.message, `layer ${bad.digest} from ${reg.host}: digest mismatch`);
        return true;
      });
      assert.equal(await store.has(bad.digest), false);
      assert.equal(await store.getRef(ref), undefined);
      assert.deepEqual(await store.listRefs(), []);
      assert.deepEqual(await fsp.readdir(join(store.root, 'tmp')), []);
      // What did land verifies; gc then leaves the store empty.
      for (const hex of await fsp.readdir(join(store.root, 'blobs', 'sha256'))) {
        assert.equal(sha256(await fsp.readFile(join(store.root, 'blobs', 'sha256', hex))), `sha256:${hex}`);
      }
      await store.gc();
      assert.deepEqual(await fsp.readdir(join(store.root, 'blobs', 'sha256')), []);
    } finally {
      await fsp.writeFile(file, original);
    }
  });

  test('an index with two platforms: default linux/amd64, platform option, clear error otherwise', async () => {
    const amd = await randomImage({ layers: 1, architecture: 'amd64' });
    const arm = await randomImage({ layers: 1, architecture: 'arm64', variant: 'v8' });
    const repo = `${reg.host}/kraud/multi`;
    await push(amd, `${repo}:amd64`);
    await push(arm, `${repo}:arm64`);
    const index: Index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { mediaType: MediaType.ociManifest, digest: amd.manifestDigest, size: amd.manifestBytes.length, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MediaType.ociManifest, digest: arm.manifestDigest, size: arm.manifestBytes.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    };
    const indexBytes = Buffer.from(JSON.stringify(index));
    const indexDigest = await pushManifest(`${repo}:latest`, indexBytes, MediaType.ociIndex);
    assert.equal(indexDigest, sha256(indexBytes));

    const store = await newStore();
    const def = await pull(repo, { store });
    assert.equal(def.manifestDigest, amd.manifestDigest);
    assert.equal(def.config.architecture, 'amd64');
    assert.equal(await store.getRef(`${repo}:latest`), amd.manifestDigest);
    assert.ok(await store.has(indexDigest), 'the index is kept in the store');

    const a64 = await pull(repo, { store, platform: 'linux/arm64/v8' });
    assert.equal(a64.manifestDigest, arm.manifestDigest);
    const a64bare = await pull(`${repo}@${indexDigest}`, { store, platform: 'linux/arm64' });
    assert.equal(a64bare.manifestDigest, arm.manifestDigest);

    await assert.rejects(pull(repo, { store, platform: 'linux/s390x' }), (err) => {
      assert.ok(isKrError(err, 'not-found'), String(err));
      assert.match(err.message, /no image for platform linux\/s390x \(available: linux\/amd64, linux\/arm64\/v8\)/);
      return true;
    });
  });

  test('unknown image → not-found; nothing listening → unavailable with the reason', async () => {
    await assert.rejects(pull(`${reg.host}/kraud/nope:v1`, { store: await newStore() }), (err) => {
      assert.ok(isKrError(err, 'not-found'), String(err));
      assert.equal(err.message, `image ${reg.host}/kraud/nope:v1 not found`);
      return true;
    });
    const port = await freePort();
    await assert.rejects(pull(`127.0.0.1:${port}/x:1`, { store: await newStore() }), (err) => {
      assert.ok(isKrError(err, 'unavailable'), String(err));
      assert.equal(err.message, `cannot reach registry 127.0.0.1:${port}: connection refused`);
      return true;
    });
  });

  test('skopeo pushes, we pull: same manifest digest and blobs', async () => {
    const image = await randomImage({ layers: 2, layerSize: 200 << 10 });
    const dir = await tmp('kraud-oci-');
    await writeOciDir(dir, image, 'v1');
    const ref = `${reg.host}/kraud/from-skopeo:v1`;
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${dir}:v1`, `docker://${ref}`]);
    const { stdout: raw } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'buffer' });
    const store = await newStore();
    const pulled = await pull(ref, { store });
    assert.equal(pulled.manifestDigest, sha256(raw));
    await assertSameImage(store, pulled, image);
  });

  test('we push, skopeo inspects our digest and copies back equal blobs', async () => {
    const image = await randomImage({ layers: 2, layerSize: 200 << 10 });
    const ref = `${reg.host}/kraud/to-skopeo:v1`;
    const { digest } = await push(image, ref);
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]);
    const info = JSON.parse(stdout);
    assert.equal(info.Digest, digest);
    assert.deepEqual(info.Layers, image.layers.map((l) => l.descriptor.digest));

    const dir = await tmp('kraud-oci-back-');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:v1`]);
    const idx = JSON.parse(await fsp.readFile(join(dir, 'index.json'), 'utf8')) as Index;
    assert.equal(idx.manifests[0].digest, digest);
    const blobs = (await fsp.readdir(join(dir, 'blobs', 'sha256'))).map((h) => `sha256:${h}`).sort();
    const expected = [digest, image.manifest.config.digest, ...image.layers.map((l) => l.descriptor.digest)].sort();
    assert.deepEqual(blobs, expected);
    for (const d of blobs) assert.equal(sha256(await fsp.readFile(join(dir, 'blobs', 'sha256', d.slice(7)))), d);
  });
});

describe('registry with htpasswd basic auth', () => {
  const user = { username: 'kraud', password: 's3cret:with:colons' };
  let reg: TestRegistry;
  let image: Image;
  before(async () => {
    reg = await startRegistry({ users: [user] });
    image = await randomImage({ layers: 2 });
    await push(image, `${reg.host}/kraud/private:v1`, { auth: user });
  });
  after(async () => reg?.stop());

  async function configDir(auths: Record<string, unknown>): Promise<NodeJS.ProcessEnv> {
    const dir = await tmp('kraud-docker-config-');
    await fsp.writeFile(join(dir, 'config.json'), JSON.stringify({ auths }));
    return { DOCKER_CONFIG: dir };
  }
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  test('credentials from $DOCKER_CONFIG/config.json (auth, https:// key, username/password)', async () => {
    for (const auths of [
      { [reg.host]: { auth: b64(`${user.username}:${user.password}`) } },
      { [`https://${reg.host}`]: { auth: b64(`${user.username}:${user.password}`) } },
      { [`http://${reg.host}/v2/`]: { username: user.username, password: user.password } },
    ]) {
      const store = await newStore();
      const pulled = await pull(`${reg.host}/kraud/private:v1`, { store, env: await configDir(auths) });
      await assertSameImage(store, pulled, image);
    }
  });

  test('wrong password or none → unauthorized naming the registry', async () => {
    const env = await configDir({ [reg.host]: { auth: b64(`${user.username}:wrong`) } });
    await assert.rejects(pull(`${reg.host}/kraud/private:v1`, { store: await newStore(), env }), (err) => {
      assert.ok(isKrError(err, 'unauthorized'), String(err));
      assert.equal(err.message, `registry ${reg.host} refused the credentials for kraud/private`);
      return true;
    });
    const none = await configDir({});
    await assert.rejects(pull(`${reg.host}/kraud/private:v1`, { store: await newStore(), env: none }), (err) => {
      assert.ok(isKrError(err, 'unauthorized'), String(err));
      assert.match(err.message, new RegExp(`registry ${reg.host.replace(/\./g, '\\.')} requires authentication`));
      return true;
    });
  });
});

describe('registry with token auth (bearer)', () => {
  const user = { username: 'pusher', password: 'pw' };
  let reg: TestRegistry;
  before(async () => (reg = await startRegistry({ tokenAuth: { users: [user], anonymousPull: true } })));
  after(async () => reg?.stop());

  test('push with credentials, pull anonymously; tokens asked for the right scopes', async () => {
    const image = await randomImage({ layers: 2 });
    const ref = `${reg.host}/team/app:v1`;
    const { digest } = await push(image, ref, { auth: user });
    assert.equal(digest, image.manifestDigest);
    const store = await newStore();
    const pulled = await pull(ref, { store, env: {} });
    await assertSameImage(store, pulled, image);
    const scopes = reg.tokenServer!.requests.map((r) => `${r.user ?? '-'} ${r.scope} ${r.status}`);
    assert.ok(scopes.includes('pusher repository:team/app:pull,push 200'), scopes.join('; '));
    assert.ok(scopes.includes('- repository:team/app:pull 200'), scopes.join('; '));
  });

  test('pushing anonymously or with a wrong password fails clearly', async () => {
    const image = await randomImage({ layers: 1 });
    await assert.rejects(push(image, `${reg.host}/team/app:anon`, { env: {} }), (err) => {
      assert.ok(isKrError(err, 'unauthorized') || isKrError(err, 'denied'), String(err));
      assert.ok(err.message.includes(reg.host), err.message);
      return true;
    });
    await assert.rejects(push(image, `${reg.host}/team/app:wrong`, { auth: { username: 'pusher', password: 'nope' } }), (err) => {
      assert.ok(isKrError(err, 'unauthorized'), String(err));
      assert.match(err.message, /refused the credentials for user "pusher"/);
      return true;
    });
  });
});
