// The bali CLI as a user meets it: node_modules/.bin/bali from any directory, results on
// stdout, one-line errors on stderr, exit codes, no partial output files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, '..');
const bali = path.join(repo, 'node_modules', '.bin', 'bali');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kraud-cli-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const env = { ...process.env, IDENTITYKIT_PATH: path.join(work, 'ik'), IDENTITYKIT_SECRET: '', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

function run(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(bali, args, { cwd: opts.cwd ?? work, env: opts.env ?? env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('bali id creates the key once and prints exactly the identity line, on the pinned Node', () => {
  const first = run(['id'], { cwd: '/' });
  assert.equal(first.code, 0, first.err);
  assert.match(first.out, /^c[A-Z2-7]{55}\n$/);
  assert.equal(first.err, '', 'no Node warnings or messages on stderr');
  assert.equal(run(['id']).out, first.out, 'same identity the second time');
  const keyFile = path.join(work, 'ik', 'bali', 'ed25519.secret');
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o400);
  const again = run(['keygen']);
  assert.equal(again.code, 1);
  assert.match(again.err, /^bali: a key already exists at .*; not overwriting it\n$/);
  // The wrapper execs the pinned Node 24, whatever `node` is on PATH.
  const version = spawnSync(path.join(repo, 'node_modules', '.bin', 'node'), ['-p', 'process.version'], { encoding: 'utf8' }).stdout;
  assert.match(version, /^v24\./);
});

test('npx bali inside the repo runs the same CLI', () => {
  const r = spawnSync('npx', ['--no-install', 'bali', 'id'], { cwd: repo, env: { ...env, PATH: process.env.PATH }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, run(['id']).out);
});

test('IDENTITYKIT_SECRET replaces the key file', () => {
  const r = run(['id'], { env: { ...env, IDENTITYKIT_SECRET: 'cCOMZM5Z2HHCSVE65EDABQYXZHFA4AFH7NCTFG2VJ6V5OX7OXI33PMUQ' } });
  assert.equal(r.out, 'cDFXSA73D3H4MOM7HPVUYWUOABQI7D5ERUR7QXOQPJD2HOYYSJCIYFWY\n');
});

test('sign + verify + inspect of a GNU tar rootfs; failures are one line with exit 1', () => {
  const root = path.join(work, 'rootfs');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc', 'motd'), 'hi\n');
  const tarFile = path.join(work, 'rootfs.tar');
  assert.equal(spawnSync('tar', ['-C', root, '-cf', tarFile, '.']).status, 0);
  const id = run(['id']).out.trim();
  const signedFile = path.join(work, 'rootfs.signed.tar.gz');
  const signed = run(['sign', tarFile, signedFile]);
  assert.equal(signed.code, 0, signed.err);
  assert.match(signed.out, /^sha256:[0-9a-f]{64}\n$/);
  const ok = run(['verify', signedFile, '--identity', id]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.out, `OK ${id}\n`);
  const idFile = path.join(work, 'ids');
  fs.writeFileSync(idFile, `${id}\n`);
  assert.equal(run(['verify', signedFile, '--identity-file', idFile]).out, `OK ${id}\n`);
  const foreign = 'cDFXSA73D3H4MOM7HPVUYWUOABQI7D5ERUR7QXOQPJD2HOYYSJCIYFWY';
  const bad = run(['verify', signedFile, '--identity', foreign]);
  assert.equal(bad.code, 1);
  assert.equal(bad.out, '');
  assert.match(bad.err, /^bali: bad signature[^\n]*\n$/);
  const info = run(['inspect', signedFile, '--identity', id, '--json']);
  assert.equal(info.code, 0, info.err);
  const parsed = JSON.parse(info.out);
  assert.equal(parsed.tarBytes, fs.statSync(tarFile).size);
  assert.equal(parsed.signed, true);

  const notTar = path.join(work, 'not-a-tar');
  fs.writeFileSync(notTar, 'just text, not a tar archive\n'.repeat(40));
  const out = path.join(work, 'never.tar.gz');
  const r = run(['sign', notTar, out]);
  assert.equal(r.code, 1);
  assert.match(r.err, /not a tar archive\n$/);
  assert.equal(r.err.split('\n').length, 2, 'one line');
  assert.ok(!fs.existsSync(out), 'no partial output');
  assert.deepEqual(fs.readdirSync(work).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
  const missing = run(['verify', path.join(work, 'nope.tar.gz'), '--identity', id]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /does not exist\n$/);
  const usage = run(['verify', signedFile]);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /needs --identity/);
  assert.equal(run(['frobnicate']).code, 2);
});
