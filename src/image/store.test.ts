import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { sha256Digest } from './digest-check.ts';
import { BlobStore, imageFromStore } from './store.ts';
import { isKrError } from '../util/errors.ts';
import { MediaType, type Manifest, type Index } from './types.ts';

async function tempStore(): Promise<BlobStore> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'kraud-store-'));
  return BlobStore.open(dir);
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function chunked(buf: Buffer, size = 1000): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

async function listDir(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).sort();
}

test('ingest streams, hashes and stores under blobs/sha256/<hex>', async () => {
  const store = await tempStore();
  const data = randomBytes(300_000);
  const digest = sha256Digest(data);
  let lastSeen = 0;
  const res = await store.ingest(chunked(data), { digest, size: data.length, onBytes: (n) => (lastSeen = n) });
  assert.deepEqual(res, { digest, size: data.length });
  assert.equal(lastSeen, data.length);
  assert.ok(await store.has(digest));
  assert.equal(store.path(digest), join(store.root, 'blobs', 'sha256', digest.slice(7)));
  assert.equal(await store.size(digest), data.length);
  assert.deepEqual(await readAll(await store.open(digest)), data);
  assert.deepEqual(await listDir(join(store.root, 'tmp')), []);
  // Without an expected digest the store computes it.
  const other = await store.ingest(Readable.from([Buffer.from('hello')]));
  assert.equal(other.digest, 'sha256:' + createHash('sha256').update('hello').digest('hex'));
});

test('digest or size mismatch stores nothing and leaves no temp file', async () => {
  const store = await tempStore();
  const data = randomBytes(50_000);
  const wrong = 'sha256:' + '0'.repeat(64);
  await assert.rejects(store.ingest(chunked(data), { digest: wrong }), (e) => isKrError(e, 'corrupt') && /digest mismatch/.test(e.message));
  await assert.rejects(store.ingest(chunked(data), { size: 10 }), (e) => isKrError(e, 'corrupt') && /size mismatch/.test(e.message));
  await assert.rejects(store.ingest(chunked(data), { size: data.length + 1 }), (e) => isKrError(e, 'corrupt'));
  // A source that fails midway.
  const failing = Readable.from((async function* () {
    yield data.subarray(0, 1000);
    throw new Error('connection reset');
  })());
  await assert.rejects(store.ingest(failing));
  assert.deepEqual(await listDir(join(store.root, 'blobs', 'sha256')), []);
  assert.deepEqual(await listDir(join(store.root, 'tmp')), []);
  assert.equal(await store.has(sha256Digest(data)), false);
  await assert.rejects(store.open(sha256Digest(data)), (e) => isKrError(e, 'not-found'));
});

test('a writer killed mid-ingest leaves nothing under blobs/, and open() sweeps its temp file', async () => {
  const store = await tempStore();
  const storeModule = join(fileURLToPath(new URL('.', import.meta.url)), 'store.ts');
  const script = `
    import { BlobStore } from ${JSON.stringify(storeModule)};
    import { Readable } from 'node:stream';
    const store = await BlobStore.open(${JSON.stringify(store.root)});
    setInterval(() => {}, 1000); // an endless source keeps no I/O pending, so hold the loop open
    const src = new Readable({ read() {} });
    src.push(Buffer.alloc(100000, 1));
    process.stdout.write('started\\n');
    await store.ingest(src); // never ends: the parent kills us
  `;
  const child = spawn(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('started') && resolve());
    child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  // Wait until the temp file exists with data, then kill without any chance to clean up.
  const tmpDir = join(store.root, 'tmp');
  for (let i = 0; i < 100; i++) {
    const files = await listDir(tmpDir);
    if (files.length && (await fsp.stat(join(tmpDir, files[0]))).size > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.removeAllListeners('exit');
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await exited;
  assert.equal((await listDir(tmpDir)).length, 1, 'the killed writer left its temp file');
  assert.deepEqual(await listDir(join(store.root, 'blobs', 'sha256')), []);
  await BlobStore.open(store.root);
  assert.deepEqual(await listDir(tmpDir), []);
});

test('refs: set, get, list, delete; names with / : @ round-trip', async () => {
  const store = await tempStore();
  const d1 = await store.putBytes(Buffer.from('{"a":1}'));
  const d2 = await store.putBytes(Buffer.from('{"b":2}'));
  const n1 = '127.0.0.1:5000/x/y:tag';
  const n2 = `docker.io/library/alpine@sha256:${'a'.repeat(64)}`;
  await store.setRef(n1, d1);
  await store.setRef(n2, d2);
  assert.equal(await store.getRef(n1), d1);
  assert.equal(await store.getRef('nope'), undefined);
  assert.deepEqual(await store.listRefs(), [{ name: n1, digest: d1 }, { name: n2, digest: d2 }].sort((a, b) => encodeURIComponent(a.name) < encodeURIComponent(b.name) ? -1 : 1));
  await store.setRef(n1, d2);
  assert.equal(await store.getRef(n1), d2);
  assert.equal(await store.deleteRef(n1), true);
  assert.equal(await store.deleteRef(n1), false);
  assert.equal(await store.getRef(n1), undefined);
  await assert.rejects(store.setRef('x', 'sha256:nothex'), (e) => isKrError(e, 'invalid'));
  await assert.rejects(store.putBytes(Buffer.from('x'), { digest: d1 }), (e) => isKrError(e, 'corrupt'));
});

test('gc keeps what refs reach through indexes and manifests, removes the rest; imageFromStore reads it back', async () => {
  const store = await tempStore();
  const put = (s: string | Buffer) => store.putBytes(Buffer.from(s));
  const desc = async (mediaType: string, bytes: Buffer) => ({ mediaType, digest: await store.putBytes(bytes), size: bytes.length });

  const layerA = randomBytes(1000);
  const layerB = randomBytes(2000);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: await desc(MediaType.ociConfig, config),
    layers: [await desc(MediaType.ociLayerGzip, layerA), await desc(MediaType.ociLayerGzip, layerB)],
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await put(manifestBytes);
  const otherLayer = randomBytes(500);
  const armManifest: Manifest = { ...manifest, layers: [await desc(MediaType.ociLayerGzip, otherLayer)] };
  const armDigest = await put(JSON.stringify(armManifest));
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { mediaType: MediaType.ociManifest, digest: manifestDigest, size: manifestBytes.length, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MediaType.ociManifest, digest: armDigest, size: 1, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  };
  const indexDigest = await put(JSON.stringify(index));
  const garbage = await put(randomBytes(700));

  await store.setRef('idx', indexDigest);
  let res = await store.gc();
  assert.deepEqual(res.removed, [garbage]);
  assert.equal(res.freedBytes, 700);
  for (const d of [indexDigest, manifestDigest, armDigest, manifest.config.digest, manifest.layers[0].digest, sha256Digest(otherLayer)]) {
    assert.ok(await store.has(d), d);
  }

  // Point a ref at the amd64 manifest only and drop the index: the arm64 branch goes.
  await store.setRef('img', manifestDigest);
  await store.deleteRef('idx');
  res = await store.gc();
  assert.deepEqual(res.removed.sort(), [indexDigest, armDigest, sha256Digest(otherLayer)].sort());

  const image = await imageFromStore(store, manifestDigest);
  assert.equal(image.manifestDigest, manifestDigest);
  assert.deepEqual(image.manifestBytes, manifestBytes);
  assert.equal(image.config.os, 'linux');
  assert.equal(image.layers.length, 2);
  assert.deepEqual(await readAll(await image.layers[1].open()), layerB);

  await store.deleteRef('img');
  res = await store.gc();
  assert.equal(res.removed.length, 4);
  assert.deepEqual(await listDir(join(store.root, 'blobs', 'sha256')), []);
});
