// OCI image layouts: our writer's output read back, read by skopeo and umoci's peer tools, tarballs
// of layouts, nested indexes with platform choice, and digest checks on every blob.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOciLayout, writeOciLayout, blobPath, REF_NAME } from './oci-layout.ts';
import { isKrError } from '../util/errors.ts';
import { buildImage, buildTestImage, type BuiltImage } from '../../test/kit/build-image.ts';
import { MediaType, type Image, type Index } from './types.ts';
import { flatten } from './flatten.ts';
import { Writable } from 'node:stream';

let work: string;
let built: BuiltImage;
const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function flattenedDigest(image: Image): Promise<string> {
  const hash = createHash('sha256');
  await flatten(image, new Writable({ write: (c: Buffer, _e, cb) => (hash.update(c), cb()) }));
  return hash.digest('hex');
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kraud-oci-layout-test-'));
  built = await buildTestImage(join(work, 'img'));
});
after(() => rm(work, { recursive: true, force: true }));

test('round trip: written layout reads back with the same manifest, config and layers', async () => {
  const img = await openOciLayout(built.layoutDir, { tag: built.tag });
  assert.equal(img.manifestDigest, built.image.manifestDigest);
  assert.ok(img.manifestBytes.equals(built.image.manifestBytes));
  assert.ok(img.configBytes.equals(built.image.configBytes));
  assert.deepEqual(img.layers.map((l) => l.descriptor), built.image.manifest.layers);
  for (const layer of img.layers) assert.equal(sha256(await readAll(await layer.open())), layer.descriptor.digest);
  // The only image is found without a tag, too.
  assert.equal((await openOciLayout(built.layoutDir)).manifestDigest, built.image.manifestDigest);
});

test('skopeo reads our layout and writes one we read', async () => {
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${built.layoutDir}:${built.tag}`], { encoding: 'utf8' }));
  assert.equal(inspect.Digest, built.image.manifestDigest);
  assert.deepEqual(inspect.Layers, built.image.manifest.layers.map((l) => l.digest));
  const copy = join(work, 'skopeo-copy');
  execFileSync('skopeo', ['--insecure-policy', 'copy', '-q', `oci:${built.layoutDir}:${built.tag}`, `oci:${copy}:copied`]);
  const img = await openOciLayout(copy, { tag: 'copied' });
  // skopeo compresses the uncompressed layer, so blob digests may differ; the content may not.
  assert.equal(img.layers.length, built.image.layers.length);
  assert.deepEqual(img.config.rootfs, built.image.config.rootfs);
  assert.equal(await flattenedDigest(img), await flattenedDigest(built.image));
});

test('a tarball of a layout (plain and gzipped) reads like the directory', async () => {
  const tarPath = join(work, 'layout.tar');
  execFileSync('tar', ['-cf', tarPath, '-C', built.layoutDir, '.']);
  const gzPath = join(work, 'layout.tar.gz');
  execFileSync('sh', ['-c', `gzip -c "${tarPath}" > "${gzPath}"`]);
  for (const path of [tarPath, gzPath]) {
    const img = await openOciLayout(path, { tag: built.tag });
    try {
      assert.equal(img.manifestDigest, built.image.manifestDigest);
      for (const layer of img.layers) assert.equal(sha256(await readAll(await layer.open())), layer.descriptor.digest);
    } finally {
      await img.close();
    }
  }
});

test('nested index: platform chosen (linux/amd64 by default)', async () => {
  const dir = join(work, 'multi');
  const amd = await buildImage(join(work, 'amd'), [{ entries: [{ type: 'file', path: 'which', content: 'amd64' }] }]);
  const arm = await buildImage(join(work, 'arm'), [{ entries: [{ type: 'file', path: 'which', content: 'arm64' }] }]);
  await writeOciLayout(dir, arm.image, 'arm-only');
  await writeOciLayout(dir, amd.image, 'amd-only');
  const nested: Index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { mediaType: MediaType.ociManifest, digest: arm.image.manifestDigest, size: arm.image.manifestBytes.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { mediaType: MediaType.ociManifest, digest: amd.image.manifestDigest, size: amd.image.manifestBytes.length, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  };
  const nestedBytes = Buffer.from(JSON.stringify(nested));
  await writeFile(join(dir, blobPath(sha256(nestedBytes))), nestedBytes);
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as Index;
  index.manifests.push({ mediaType: MediaType.ociIndex, digest: sha256(nestedBytes), size: nestedBytes.length, annotations: { [REF_NAME]: 'multi' } });
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));

  assert.equal((await openOciLayout(dir, { tag: 'multi' })).manifestDigest, amd.image.manifestDigest);
  assert.equal((await openOciLayout(dir, { tag: 'multi', platform: 'linux/arm64' })).manifestDigest, arm.image.manifestDigest);
  assert.equal((await openOciLayout(dir, { tag: 'arm-only' })).manifestDigest, arm.image.manifestDigest);
  await assert.rejects(openOciLayout(dir, { tag: 'multi', platform: 'linux/s390x' }), (e) => isKrError(e, 'not-found') && /linux\/s390x/.test(e.message));
  await assert.rejects(openOciLayout(dir), (e) => isKrError(e, 'invalid') && /name one by tag/.test(e.message));
  await assert.rejects(openOciLayout(dir, { tag: 'nope' }), (e) => isKrError(e, 'not-found'));
});

test('blobs are checked against their digests', async () => {
  const dir = join(work, 'tamper');
  const img = await buildImage(dir, [{ compression: 'none', entries: [{ type: 'file', path: 'f', content: 'original' }] }]);
  const layerFile = join(img.layoutDir, blobPath(img.image.manifest.layers[0].digest));
  const bytes = await readFile(layerFile);
  bytes[bytes.indexOf('original')] ^= 0x20;
  await writeFile(layerFile, bytes);
  const opened = await openOciLayout(img.layoutDir);
  await assert.rejects(readAll(await opened.layers[0].open()), (e) => isKrError(e, 'corrupt') && /expected sha256:/.test(e.message));

  const configFile = join(img.layoutDir, blobPath(img.image.manifest.config.digest));
  await writeFile(configFile, Buffer.concat([await readFile(configFile), Buffer.from(' ')]));
  await assert.rejects(openOciLayout(img.layoutDir), (e) => isKrError(e, 'corrupt') && /config|blob/.test(e.message));

  await rm(join(img.layoutDir, 'oci-layout'));
  await assert.rejects(openOciLayout(img.layoutDir), (e) => isKrError(e, 'corrupt') && /oci-layout missing/.test(e.message));
});
