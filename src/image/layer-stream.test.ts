// Layer decompression chosen by media type, and by magic bytes when the media type says nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { openUncompressed } from './layer-stream.ts';
import { layerTar } from '../../test/kit/build-image.ts';
import type { Layer } from './types.ts';

const tar = layerTar([{ type: 'file', path: 'hello', content: 'world' }]);

function layer(bytes: Buffer, mediaType: string): Layer {
  // Delivered in small pieces so sniffing must gather bytes across chunks.
  const pieces = [bytes.subarray(0, 1), bytes.subarray(1, 3), bytes.subarray(3)];
  return { descriptor: { mediaType, digest: 'sha256:' + '0'.repeat(64), size: bytes.length }, open: async () => Readable.from(pieces) };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('gzip, zstd and plain layers by media type', async () => {
  assert.ok((await readAll(await openUncompressed(layer(gzipSync(tar), 'application/vnd.oci.image.layer.v1.tar+gzip')))).equals(tar));
  assert.ok((await readAll(await openUncompressed(layer(zstdCompressSync(tar), 'application/vnd.oci.image.layer.v1.tar+zstd')))).equals(tar));
  assert.ok((await readAll(await openUncompressed(layer(tar, 'application/vnd.oci.image.layer.v1.tar')))).equals(tar));
});

test('magic bytes decide when the media type does not say', async () => {
  for (const bytes of [gzipSync(tar), zstdCompressSync(tar), tar]) {
    assert.ok((await readAll(await openUncompressed(layer(bytes, 'application/vnd.oci.image.layer.v1.tar')))).equals(tar));
    assert.ok((await readAll(await openUncompressed(layer(bytes, 'application/octet-stream')))).equals(tar));
  }
  assert.equal((await readAll(await openUncompressed(layer(Buffer.alloc(0), 'application/vnd.oci.image.layer.v1.tar')))).length, 0);
});

test('bad compressed data is an error, not silence', async () => {
  await assert.rejects(readAll(await openUncompressed(layer(Buffer.from('\x1f\x8b garbage'), 'application/vnd.oci.image.layer.v1.tar+gzip'))));
});
