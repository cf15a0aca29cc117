import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ed25519ph } from '@noble/curves/ed25519.js';
import { crc8, decodeKeyString, encodeKeyString } from './key-string.ts';
import { createKey, keyFromSecretString, keyFilePath, loadKey, loadOrCreateKey, readTrustedIdentities } from './keys.ts';
import { signDigest, verifyDigest } from './ed25519ph.ts';

const vectorSecret = 'cCOMZM5Z2HHCSVE65EDABQYXZHFA4AFH7NCTFG2VJ6V5OX7OXI33PMUQ';
const vectorIdentity = 'cDFXSA73D3H4MOM7HPVUYWUOABQI7D5ERUR7QXOQPJD2HOYYSJCIYFWY';

test('identitykit test vector: secret string gives the known identity string', () => {
  assert.equal(keyFromSecretString(vectorSecret).identity, vectorIdentity);
});

test('key strings round-trip and reject typos, wrong types and bad checksums', () => {
  const seed = decodeKeyString(vectorSecret, 'secret', 32);
  assert.equal(encodeKeyString('secret', seed), vectorSecret);
  assert.throws(() => decodeKeyString(vectorSecret, 'identity', 32), /expected a identity string, got a secret/);
  const typo = vectorIdentity.slice(0, 20) + (vectorIdentity[20] === 'A' ? 'B' : 'A') + vectorIdentity.slice(21);
  assert.throws(() => decodeKeyString(typo, 'identity', 32), /checksum|length/);
  assert.throws(() => decodeKeyString('xABC', 'identity', 32), /not a identity string/);
  assert.throws(() => decodeKeyString('c' + 'A'.repeat(55), 'identity', 32), /degenerate|version|checksum/);
  // lower case is accepted, as the original upper-cases before decoding
  assert.deepEqual(decodeKeyString(vectorIdentity.toLowerCase().replace(/^c/, 'c'), 'identity', 32), decodeKeyString(vectorIdentity, 'identity', 32));
  assert.equal(crc8(new Uint8Array([])), 0);
});

test('Ed25519ph over a precomputed digest matches RFC 8032 §7.3 and noble\'s ed25519ph', () => {
  const seed = Buffer.from('833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42', 'hex');
  const msg = Buffer.from('616263', 'hex');
  const digest = createHash('sha512').update(msg).digest();
  const sig = signDigest(digest, seed, new Uint8Array());
  assert.equal(
    Buffer.from(sig).toString('hex'),
    '98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406',
  );
  const context = new TextEncoder().encode('bali');
  const withCtx = signDigest(digest, seed, context);
  assert.deepEqual(withCtx, ed25519ph.sign(msg, seed, { context }));
  const pub = ed25519ph.getPublicKey(seed);
  assert.ok(verifyDigest(withCtx, digest, pub, context));
  assert.ok(!verifyDigest(withCtx, digest, pub, new TextEncoder().encode('balx')));
  const flipped = new Uint8Array(withCtx);
  flipped[10] ^= 1;
  assert.ok(!verifyDigest(flipped, digest, pub, context));
});

test('key file: created 0400 under $IDENTITYKIT_PATH/bali, never overwritten, IDENTITYKIT_SECRET wins', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kraud-keys-'));
  try {
    const env = { IDENTITYKIT_PATH: dir, HOME: dir };
    assert.equal(keyFilePath(env), path.join(dir, 'bali', 'ed25519.secret'));
    assert.throws(() => loadKey(env), /no signing key .*bali keygen/);
    const { key, file } = createKey(env);
    assert.equal(fs.statSync(file).mode & 0o777, 0o400);
    assert.match(fs.readFileSync(file, 'utf8'), /^c[A-Z2-7]+$/);
    assert.throws(() => createKey(env), /already exists/);
    assert.equal(loadKey(env).identity, key.identity);
    assert.equal(loadOrCreateKey(env).identity, key.identity);
    assert.equal(loadKey({ ...env, IDENTITYKIT_SECRET: vectorSecret }).identity, vectorIdentity);
    const idFile = path.join(dir, 'trusted');
    fs.writeFileSync(idFile, `# ops team\n${vectorIdentity}\n\n${key.identity}\n`);
    assert.equal(readTrustedIdentities([], [idFile]).length, 2);
    fs.writeFileSync(idFile, 'nonsense\n');
    assert.throws(() => readTrustedIdentities([], [idFile]), /trusted:1/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
