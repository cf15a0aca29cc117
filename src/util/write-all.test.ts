// writeAll/writeAllSync: more buffers than one writev takes, at a position or at the current offset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAll, writeAllSync } from './write-all.ts';

// 3000 buffers of 1 to 7 bytes: three writev calls' worth, with odd sizes at the seams.
const pieces = Array.from({ length: 3000 }, (_, i) => Buffer.alloc(1 + (i % 7), i % 251));
const joined = Buffer.concat(pieces);

test('writeAll writes every buffer, in order, at a position and at the current offset', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kraud-write-all-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'f');
  const fh = await open(file, 'w');
  try {
    await writeAll(fh, pieces, 5);
    await writeAll(fh, pieces); // the offset is still 0: positional writes do not move it
  } finally {
    await fh.close();
  }
  const got = readFileSync(file);
  assert.equal(got.length, 5 + joined.length);
  assert.deepEqual(got.subarray(0, joined.length), joined);
  assert.deepEqual(got.subarray(joined.length), joined.subarray(joined.length - 5));
});

test('writeAllSync writes every buffer, in order', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kraud-write-all-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'f');
  const fd = openSync(file, 'w');
  try {
    writeAllSync(fd, pieces, 0);
    writeAllSync(fd, []);
  } finally {
    closeSync(fd);
  }
  assert.deepEqual(readFileSync(file), joined);
});
