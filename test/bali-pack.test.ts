// `bali pack` from the local sources (OCI layout, docker archive) through the real CLI:
// the file verifies, GNU tar extracts it without a metadata file, inspect shows the config,
// and bad input (corrupt archive, full disk) leaves no partial output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildTestImage, type BuiltImage } from './kit/build-image.ts';

const repo = path.resolve(import.meta.dirname, '..');
const bali = path.join(repo, 'node_modules', '.bin', 'bali');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kraud-pack-'));
const env = { ...process.env, IDENTITYKIT_PATH: path.join(work, 'ik'), IDENTITYKIT_SECRET: '', KRAUD_STORE: path.join(work, 'store') };
let built: BuiltImage;
let id: string;
const mounts: string[] = [];
process.on('exit', () => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  fs.rmSync(work, { recursive: true, force: true });
});

function run(args: string[]) {
  const r = spawnSync(bali, args, { cwd: work, env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('setup: a multi-layer test image and a key', async () => {
  built = await buildTestImage(path.join(work, 'img'));
  id = run(['id']).out.trim();
  assert.match(id, /^c[A-Z2-7]{55}$/);
});

for (const [name, source] of [
  ['OCI layout directory', () => built.layoutDir],
  ['OCI layout with tag', () => `oci:${built.layoutDir}:${built.tag}`],
  ['docker archive', () => built.dockerArchive],
] as const) {
  test(`pack from ${name}: verifies, extracts with GNU tar, carries the config`, () => {
    const out = path.join(work, `${name.replace(/\W+/g, '-')}.tar.gz`);
    const r = run(['pack', source(), out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^sha256:[0-9a-f]{64}\n$/);
    assert.equal(run(['verify', out, '--identity', id]).out, `OK ${id}\n`);
    const root = path.join(work, `root-${name.replace(/\W+/g, '-')}`);
    fs.mkdirSync(root);
    const tar = spawnSync('tar', ['-xzf', out, '-C', root], { encoding: 'utf8' });
    assert.equal(tar.status, 0, tar.stderr);
    assert.equal(tar.stderr, '');
    assert.ok(fs.existsSync(path.join(root, 'bin', 'busybox')));
    assert.ok(!fs.existsSync(path.join(root, 'pax_global_header')), 'the config adds no file to the rootfs');
    const info = JSON.parse(run(['inspect', out, '--identity', id, '--json']).out);
    assert.equal(info.signer, id);
    assert.equal(info.trusted, true);
    assert.deepEqual(info.config.config.Cmd, built.image.config.config!.Cmd);
    assert.deepEqual(info.config.config.Entrypoint, built.image.config.config!.Entrypoint);
    assert.equal(info.config.config.WorkingDir, built.image.config.config!.WorkingDir);
    const human = run(['inspect', out]).out;
    assert.match(human, new RegExp(`signer: +${id} \\(signature valid; pass --identity to check trust\\)`));
  });
}

test('pack --no-sign writes an unsigned file that verify refuses', () => {
  const out = path.join(work, 'unsigned.tar.gz');
  assert.equal(run(['pack', '--no-sign', built.layoutDir, out]).code, 0);
  const v = run(['verify', out, '--identity', id]);
  assert.equal(v.code, 1);
  assert.match(v.err, /^bali: no signature/);
});

test('bad input: missing or corrupt source → one line, exit 1, no output file', () => {
  const out = path.join(work, 'bad.tar.gz');
  const missing = run(['pack', path.join(work, 'nope.tar'), out]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^bali: .*no such file or directory\n$/);
  const corrupt = path.join(work, 'corrupt.tar');
  const bytes = fs.readFileSync(built.dockerArchive);
  fs.writeFileSync(corrupt, bytes.subarray(0, bytes.length >> 1)); // cut in the middle
  const r = run(['pack', corrupt, out]);
  assert.equal(r.code, 1, 'corrupt archive fails');
  assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
  assert.ok(!fs.existsSync(out));
  assert.deepEqual(fs.readdirSync(work).filter((f) => f.endsWith('.tmp')), []);
});

test('full disk: pack into a 1 MiB tmpfs fails with "no space left", leaves nothing', async () => {
  const big = await buildTestImage(path.join(work, 'big'), { extraBytes: 4 << 20 });
  const small = path.join(work, 'small');
  fs.mkdirSync(small);
  assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]).status, 0, 'mount a tiny tmpfs (root)');
  mounts.push(small);
  const r = run(['pack', big.layoutDir, path.join(small, 'big.tar.gz')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /no space left on device/);
  assert.equal(r.err.trim().split('\n').length, 1);
  assert.deepEqual(fs.readdirSync(small), [], 'no partial or temp file left');
});

test('pack from a loopback registry: same file as from the layout; unknown image, 401 and a corrupt blob are one line, exit 1, no output', async () => {
  const { startRegistry } = await import('./kit/registry.ts');
  const { push } = await import('../src/image/registry/index.ts');
  const registry = await startRegistry({ users: [{ username: 'ops', password: 'secret' }] });
  const dockerConfig = path.join(work, 'docker-config');
  fs.mkdirSync(dockerConfig);
  const auth = Buffer.from('ops:secret').toString('base64');
  fs.writeFileSync(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth } } }));
  const withAuth = { ...env, DOCKER_CONFIG: dockerConfig };
  const runWith = (args: string[], e: NodeJS.ProcessEnv) => {
    const r = spawnSync(bali, args, { cwd: work, env: e, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  try {
    const ref = `${registry.host}/kraud/busybox:v1`;
    await push(built.image, ref, { auth: { username: 'ops', password: 'secret' } });
    const fromRegistry = path.join(work, 'from-registry.tar.gz');
    const ok = runWith(['pack', ref, fromRegistry], withAuth);
    assert.equal(ok.code, 0, ok.err);
    const fromLayout = path.join(work, 'from-layout.tar.gz');
    assert.equal(run(['pack', built.layoutDir, fromLayout]).code, 0);
    assert.ok(fs.readFileSync(fromRegistry).equals(fs.readFileSync(fromLayout)), 'flatten is deterministic: identical signed files');

    const out = path.join(work, 'never.tar.gz');
    const cases: [string, string[], NodeJS.ProcessEnv, RegExp][] = [
      ['unknown image', ['pack', `${registry.host}/kraud/nope:v1`, out], withAuth, /not found/],
      ['no credentials', ['pack', ref, out], { ...env, DOCKER_CONFIG: path.join(work, 'empty-config') }, /requires authentication|unauthorized|credentials/],
    ];
    // A registry serving a wrong digest: corrupt a layer blob in its storage.
    const blob = registry.blobFile(built.image.manifest.layers[0].digest);
    const bytes = fs.readFileSync(blob);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(blob, bytes);
    cases.push(['wrong digest', ['pack', ref, out, '--platform', 'linux/amd64'], { ...withAuth, KRAUD_STORE: path.join(work, 'fresh-store') }, /digest mismatch/]);
    for (const [name, args, e, pattern] of cases) {
      const r = runWith(args, e);
      assert.equal(r.code, 1, `${name}: ${r.err}`);
      assert.match(r.err, pattern, name);
      assert.equal(r.err.trim().split('\n').length, 1, `one line for ${name}: ${r.err}`);
      assert.ok(!fs.existsSync(out), `${name}: no output file`);
    }
  } finally {
    await registry.stop();
  }
});
