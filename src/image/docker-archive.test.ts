// Reading `docker save` archives: round trip from the test kit (plain and gzipped), tag
// choice, and corrupt archives failing with one clear line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { openDockerArchive, listDockerArchive } from './docker-archive.ts';
import { isKrError } from '../util/errors.ts';
import { buildTestImage, dockerArchiveOf, layerTar, type BuiltImage } from '../../test/kit/build-image.ts';

let work: string;
let built: BuiltImage;
const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kraud-docker-archive-test-'));
  built = await buildTestImage(join(work, 'img'));
});
after(() => rm(work, { recursive: true, force: true }));

test('round trip: layers, digests and config as built', async () => {
  const img = await openDockerArchive(built.dockerArchive);
  try {
    assert.deepEqual(img.repoTags, ['kraud-test:latest']);
    assert.ok(img.configBytes.equals(built.image.configBytes));
    assert.deepEqual(img.config, built.image.config);
    assert.equal(img.manifest.config.digest, sha256(built.image.configBytes));
    assert.deepEqual(img.layers.map((l) => l.descriptor.digest), built.image.config.rootfs.diff_ids);
    for (const [i, layer] of img.layers.entries()) {
      assert.equal(layer.descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar');
      assert.ok((await readAll(await layer.open())).equals(built.diffs[i]));
    }
    assert.equal(img.manifestDigest, sha256(img.manifestBytes));
    assert.deepEqual(JSON.parse(img.manifestBytes.toString()), img.manifest);
  } finally {
    await img.close();
  }
});

test('a gzipped archive and gzipped layer.tar files read the same', async () => {
  const gz = join(work, 'image.docker.tar.gz');
  await writeFile(gz, gzipSync(await readFile(built.dockerArchive)));
  const plain = await openDockerArchive(built.dockerArchive);
  const zipped = await openDockerArchive(gz);
  try {
    assert.deepEqual(zipped.manifest, plain.manifest);
    assert.ok((await readAll(await zipped.layers[0].open())).equals(built.diffs[0]));
  } finally {
    await plain.close();
    await zipped.close();
  }
  // Layers stored gzipped inside the archive: media type and digest follow the bytes.
  const gzLayers = built.diffs.map((d) => gzipSync(d));
  const archive = dockerArchiveOf(built.image.config, built.image.configBytes, gzLayers, 'gz:1');
  const path = join(work, 'gz-layers.tar');
  await writeFile(path, archive);
  const img = await openDockerArchive(path);
  try {
    assert.equal(img.layers[0].descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.deepEqual(img.layers.map((l) => l.descriptor.digest), gzLayers.map(sha256));
  } finally {
    await img.close();
  }
});

test('choosing an image by tag', async () => {
  const path = join(work, 'two.tar');
  // Two images sharing layers: the second has a different config.
  const cfg2 = Buffer.from(JSON.stringify({ ...built.image.config, config: { Cmd: ['two'] } }));
  const tar = layerTar([
    { type: 'file', path: 'a.json', content: built.image.configBytes },
    { type: 'file', path: 'b.json', content: cfg2 },
    ...built.diffs.map((d, i) => ({ type: 'file' as const, path: `l${i}/layer.tar`, content: d })),
    {
      type: 'file',
      path: 'manifest.json',
      content: JSON.stringify([
        { Config: 'a.json', RepoTags: ['one:latest'], Layers: built.diffs.map((_, i) => `l${i}/layer.tar`) },
        { Config: 'b.json', RepoTags: ['docker.io/library/two:v2'], Layers: built.diffs.map((_, i) => `./l${i}/layer.tar`) },
      ]),
    },
  ]);
  await writeFile(path, tar);
  assert.deepEqual(await listDockerArchive(path), [['one:latest'], ['docker.io/library/two:v2']]);
  const byDefault = await openDockerArchive(path);
  assert.deepEqual(byDefault.repoTags, ['one:latest']);
  await byDefault.close();
  const one = await openDockerArchive(path, { tag: 'one' });
  assert.deepEqual(one.repoTags, ['one:latest']);
  await one.close();
  const two = await openDockerArchive(path, { tag: 'two:v2' });
  assert.deepEqual(two.config.config, { Cmd: ['two'] });
  await two.close();
  await assert.rejects(openDockerArchive(path, { tag: 'three' }), (e) => isKrError(e, 'not-found') && /no image tagged three/.test(e.message));
});

test('corrupt archives fail with kind corrupt and one clear line', async () => {
  const noManifest = join(work, 'no-manifest.tar');
  await writeFile(noManifest, layerTar([{ type: 'file', path: 'x', content: 'x' }]));
  await assert.rejects(openDockerArchive(noManifest), (e) => isKrError(e, 'corrupt') && e.message === `docker archive ${noManifest}: manifest.json missing`);

  const missingLayer = join(work, 'missing-layer.tar');
  await writeFile(missingLayer, layerTar([
    { type: 'file', path: 'c.json', content: built.image.configBytes },
    { type: 'file', path: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', RepoTags: [], Layers: built.diffs.map((_, i) => `l${i}/layer.tar`) }]) },
  ]));
  await assert.rejects(openDockerArchive(missingLayer), (e) => isKrError(e, 'corrupt') && /layer l0\/layer.tar missing/.test(e.message));

  const truncated = join(work, 'truncated.tar');
  await writeFile(truncated, (await readFile(built.dockerArchive)).subarray(0, 5000));
  await assert.rejects(openDockerArchive(truncated), (e) => isKrError(e, 'corrupt'));

  const notTar = join(work, 'garbage.tar');
  await writeFile(notTar, Buffer.alloc(4096, 0x41));
  await assert.rejects(openDockerArchive(notTar), (e) => isKrError(e, 'corrupt'));

  await assert.rejects(openDockerArchive(join(work, 'nope.tar')), (e) => isKrError(e, 'not-found'));

  // A layer whose bytes do not match its diff_id: found when the layer is read.
  const tampered = Buffer.from(built.diffs[1]);
  tampered[tampered.indexOf('new content')] ^= 0x20;
  const bad = join(work, 'tampered.tar');
  const archive = dockerArchiveOf(built.image.config, built.image.configBytes, [built.diffs[0], tampered, built.diffs[2]], 't:1');
  // The config still carries the original diff_ids, which is the digest the reader trusts.
  await writeFile(bad, archive);
  const img = await openDockerArchive(bad);
  try {
    await assert.rejects(readAll(await img.layers[1].open()), (e) => isKrError(e, 'corrupt') && /expected sha256:/.test(e.message));
  } finally {
    await img.close();
  }
});
