// flatten() against a real peer: `umoci unpack` of the same OCI layout must give the same tree as
// GNU tar extracting our single tar. Plus the overlay cases asserted one by one, determinism, the
// config header, hostile paths and corrupt layers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { flatten } from './flatten.ts';
import { readConfigHeader } from './config-header.ts';
import { openOciLayout } from './oci-layout.ts';
import { isKrError } from '../util/errors.ts';
import { buildImage, buildTestImage, type BuiltImage } from '../../test/kit/build-image.ts';
import { snapshot } from '../../test/kit/rootfs-tree.ts';
import type { Image } from './types.ts';

let work: string;
let built: BuiltImage;
let ourTar: string;
let ourRoot: string;

async function flattenToFile(image: Image, path: string, opts = {}): Promise<{ entries: number; bytes: number; skipped: number }> {
  return flatten(image, createWriteStream(path), opts);
}

function extract(tarPath: string, dir: string): void {
  execFileSync('mkdir', ['-p', dir]);
  execFileSync('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '-xpf', tarPath, '-C', dir]);
}

const sha256File = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kraud-flatten-test-'));
  built = await buildTestImage(join(work, 'img'));
  ourTar = join(work, 'ours.tar');
  const image = await openOciLayout(built.layoutDir, { tag: built.tag });
  await flattenToFile(image, ourTar);
  ourRoot = join(work, 'ours');
  extract(ourTar, ourRoot);
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

test('flattened rootfs equals umoci unpack of the same image', () => {
  const bundle = join(work, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${built.layoutDir}:${built.tag}`, bundle]);
  const theirs = snapshot(join(bundle, 'rootfs'));
  const ours = snapshot(ourRoot);
  assert.deepEqual([...ours.paths.keys()], [...theirs.paths.keys()], 'same paths');
  for (const [p, info] of theirs.paths) assert.deepEqual(ours.paths.get(p), info, `same metadata and content for ${p}`);
  assert.deepEqual(ours.hardlinkGroups, theirs.hardlinkGroups, 'same hardlink groups');
  assert.ok(ours.hardlinkGroups.length >= 2, 'the image has hardlink groups to compare');
  assert.deepEqual(ours.xattrs, theirs.xattrs, 'same xattrs');
  assert.ok(Object.keys(ours.xattrs).length > 0, 'the image has xattrs to compare');
});

test('whiteouts, opaque dirs, replacements and hardlinks to lower files', () => {
  const at = (p: string) => join(ourRoot, p);
  const has = (p: string) => existsSync(at(p)) || (() => { try { lstatSync(at(p)); return true; } catch { return false; } })();
  assert.ok(!has('var/cache/x'), 'whiteout deletes a lower file');
  assert.ok(has('var/cache/y') && has('var/cache/z'));
  assert.ok(!has('gone'), 'whiteout deletes a lower dir with everything under it');
  assert.deepEqual(readdirSync(at('var/lib/data')), ['new'], 'opaque dir hides all lower content');
  assert.equal((statSync(at('var/lib/data')).mode & 0o7777).toString(8), '750');
  assert.equal(statSync(at('usr/bin/ls-hardlink')).ino, statSync(at('bin/busybox')).ino, 'hardlink to a lower file');
  assert.equal(readFileSync(at('etc/hard-b'), 'utf8'), 'shared by a hardlink group\n', 'link survives deletion of its first path');
  assert.ok(!has('etc/hard-a'));
  assert.equal(readFileSync(at('etc/to-replace'), 'utf8'), 'new content\n');
  assert.ok(lstatSync(at('lib-dir')).isSymbolicLink(), 'dir replaced by symlink');
  assert.ok(statSync(at('opt')).isFile(), 'dir replaced by file');
  assert.ok(statSync(at('etc/file-to-dir')).isDirectory(), 'file replaced by dir');
  assert.equal((statSync(at('usr/bin/suid')).mode & 0o7777).toString(8), '4755');
  assert.equal((statSync(at('tmp')).mode & 0o7777).toString(8), '1777');
  assert.ok(statSync(at('run/fifo')).isFIFO());
  assert.ok(statSync(at('dev/null')).isCharacterDevice());
  assert.equal(statSync(at('home/user')).uid, 1000);
  const listing = execFileSync('tar', ['-tf', ourTar], { encoding: 'utf8' }).split('\n');
  assert.ok(!listing.some((l) => l.includes('.wh.')), 'no whiteout files in the output');
});

test('output order: parents first, sorted, link targets before links', () => {
  const names = execFileSync('tar', ['-tf', ourTar], { encoding: 'utf8' }).trim().split('\n');
  const seen = new Set<string>();
  for (const n of names) {
    const clean = n.replace(/\/$/, '');
    const parent = clean.includes('/') ? clean.slice(0, clean.lastIndexOf('/')) : null;
    if (parent) assert.ok(seen.has(parent), `${parent} before ${clean}`);
    seen.add(clean);
  }
  const verbose = execFileSync('tar', ['-tvf', ourTar], { encoding: 'utf8' });
  for (const m of verbose.matchAll(/ (\S+) link to (\S+)/g)) assert.ok(names.indexOf(m[2]) < names.indexOf(m[1]), `${m[2]} before ${m[1]}`);
});

test('same image gives the same bytes; docker archive and OCI layout agree', async () => {
  const again = join(work, 'again.tar');
  await flattenToFile(await openOciLayout(built.layoutDir, { tag: built.tag }), again);
  assert.equal(sha256File(again), sha256File(ourTar));
  const { openDockerArchive } = await import('./docker-archive.ts');
  const fromArchive = await openDockerArchive(built.dockerArchive);
  const viaArchive = join(work, 'via-archive.tar');
  try {
    await flattenToFile(fromArchive, viaArchive);
  } finally {
    await fromArchive.close();
  }
  assert.equal(sha256File(viaArchive), sha256File(ourTar));
});

test('config travels in a PAX global header that GNU tar does not extract', async () => {
  const bytes = await readFile(ourTar);
  const cfg = await readConfigHeader(bytes);
  assert.ok(cfg);
  assert.equal(cfg.architecture, 'amd64');
  assert.equal(cfg.os, 'linux');
  assert.deepEqual(cfg.config, built.image.config.config);
  // From a stream: the bytes looked at are pushed back, the stream still reads from the start.
  const stream = createReadStream(ourTar);
  assert.deepEqual(await readConfigHeader(stream), cfg);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  assert.ok(Buffer.concat(chunks).equals(bytes));
  const listing = execFileSync('tar', ['-tf', ourTar], { encoding: 'utf8' });
  assert.ok(!listing.includes('pax_global_header'));
  assert.ok(!readdirSync(ourRoot).includes('pax_global_header'));
  // Without the header the tar starts with the root entry.
  const plain = join(work, 'plain.tar');
  await flattenToFile(built.image, plain, { configHeader: false });
  assert.equal(await readConfigHeader(await readFile(plain)), null);
  assert.equal((await readFile(plain)).subarray(0, 2).toString(), './');
});

test('hostile paths do not escape the root', async () => {
  const dir = join(work, 'hostile');
  const img = await buildImage(dir, [
    {
      compression: 'none',
      entries: [
        { type: 'file', path: '../escape', content: 'no' },
        { type: 'file', path: 'a/../../y', content: 'no' },
        { type: 'file', path: '/abs', content: 'inside' },
        { type: 'dir', path: 'etc/' },
        { type: 'symlink', path: 'evil', target: '/etc' },
        { type: 'file', path: 'evil/through-link', content: 'lands in etc' },
        { type: 'symlink', path: 'up', target: '../../../..' },
        { type: 'file', path: 'up/escaped-by-link', content: 'lands in the root' },
        { type: 'link', path: 'hard', target: '../../etc/passwd' },
      ],
    },
  ]);
  const tarPath = join(dir, 'out.tar');
  const result = await flattenToFile(img.image, tarPath);
  assert.equal(result.skipped, 3);
  const jail = join(dir, 'jail', 'root');
  extract(tarPath, jail);
  assert.deepEqual(readdirSync(join(dir, 'jail')), ['root']);
  assert.equal(readFileSync(join(jail, 'abs'), 'utf8'), 'inside');
  assert.equal(readFileSync(join(jail, 'etc/through-link'), 'utf8'), 'lands in etc');
  assert.equal(readFileSync(join(jail, 'escaped-by-link'), 'utf8'), 'lands in the root');
  assert.ok(!existsSync(join(jail, 'hard')));
});

test('same-layer whiteouts only hide lower content', async () => {
  const dir = join(work, 'same-layer');
  const img = await buildImage(dir, [
    { entries: [{ type: 'dir', path: 'd/' }, { type: 'file', path: 'd/lower', content: '1' }, { type: 'file', path: 'c', content: 'old' }] },
    {
      entries: [
        { type: 'file', path: 'd/upper', content: '2' },
        { type: 'opaque', path: 'd' }, // after the upper entry: must not delete it
        { type: 'file', path: 'c', content: 'new' },
        { type: 'whiteout', path: 'c' }, // same layer as the new c: keeps it
      ],
    },
  ]);
  const out = new PassThrough();
  const names: string[] = [];
  const done = flatten(img.image, out, { configHeader: false });
  const { readTarStream } = await import('./tar/tar-reader.ts');
  for await (const e of readTarStream(out)) names.push(e.header.path);
  await done;
  assert.deepEqual(names, ['c', 'd/', 'd/upper']);
});

test('a corrupt layer fails with kind corrupt and names the layer', async () => {
  const bad: Image = {
    ...built.image,
    layers: [{ descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: 'sha256:' + '0'.repeat(64), size: 10 }, open: async () => Readable.from([Buffer.from('\x1f\x8bnot really gzip at all')]) }],
  };
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  await assert.rejects(flatten(bad, sink), (err) => isKrError(err, 'corrupt') && /layer 1 \(sha256:0{64}\)/.test(err.message));
  const notTar: Image = { ...built.image, layers: [{ descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: 'sha256:' + '1'.repeat(64), size: 600 }, open: async () => Readable.from([Buffer.alloc(600, 0x41)]) }] };
  await assert.rejects(flatten(notTar, new Writable({ write: (_c, _e, cb) => cb() })), (err) => isKrError(err, 'corrupt'));
});

test('long names, big ids and binary xattrs survive a round trip through GNU tar', async () => {
  const dir = join(work, 'long');
  await mkdir(dir, { recursive: true });
  const longDir = 'd'.repeat(120);
  const longName = `${longDir}/${'n'.repeat(150)}`;
  const img = await buildImage(dir, [
    {
      compression: 'none',
      entries: [
        { type: 'dir', path: `${longDir}/` },
        { type: 'file', path: longName, content: 'long', uid: 3_000_000, gid: 2_500_000 },
        { type: 'symlink', path: 'long-link', target: 'x'.repeat(200) },
        { type: 'file', path: 'caps', content: 'c', xattrs: { 'user.raw': Buffer.from([0, 1, 2, 0xfe, 0xff, 0x0a]) } },
      ],
    },
  ]);
  const tarPath = join(dir, 'out.tar');
  await flattenToFile(img.image, tarPath);
  const root = join(dir, 'root');
  extract(tarPath, root);
  const st = statSync(join(root, longName));
  assert.equal(st.uid, 3_000_000);
  assert.equal(st.gid, 2_500_000);
  assert.equal(lstatSync(join(root, 'long-link')).isSymbolicLink(), true);
  const snap = snapshot(root);
  assert.equal(snap.paths.get('long-link')?.target, 'x'.repeat(200));
  assert.deepEqual(snap.xattrs['caps'], { 'user.raw': '000102feff0a' });
});

test('layers written by GNU tar (gnu and posix formats) flatten to the same tree', async () => {
  const src = join(work, 'gnu-src');
  await mkdir(join(src, 'd'.repeat(90), 'e'.repeat(90)), { recursive: true });
  execFileSync('sh', ['-c', [
    `cd "${src}"`,
    `echo long > "${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(120)}"`,
    'echo data > file && chmod 4750 file && chown 1234:5678 file',
    'ln file hard',
    `ln -s "${'t'.repeat(150)}" longlink`,
    'mkfifo fifo',
    'mknod null c 1 3',
    `python3 -c "import os; os.setxattr('file', 'user.k', bytes([0,255,10]))"`,
  ].join(' && ')]);
  const expected = snapshot(src);
  for (const format of ['gnu', 'posix']) {
    const dir = join(work, `gnu-${format}`);
    await mkdir(dir, { recursive: true });
    const layerPath = join(dir, 'layer.tar');
    execFileSync('tar', [`--format=${format}`, '--xattrs', "--xattrs-include=*", '--numeric-owner', '-cf', layerPath, '-C', src, '.']);
    const layerBytes = await readFile(layerPath);
    const image: Image = {
      ...built.image,
      layers: [{ descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: 'sha256:' + createHash('sha256').update(layerBytes).digest('hex'), size: layerBytes.length }, open: async () => Readable.from([layerBytes]) }],
    };
    const out = join(dir, 'out.tar');
    await flattenToFile(image, out);
    const root = join(dir, 'root');
    extract(out, root);
    const got = snapshot(root);
    assert.deepEqual([...got.paths.entries()], [...expected.paths.entries()], format);
    assert.deepEqual(got.hardlinkGroups, expected.hardlinkGroups, format);
    assert.deepEqual(got.xattrs, expected.xattrs, format);
  }
});
