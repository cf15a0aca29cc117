// Signed files against real peers: GNU tar must read them; the verifier must reject every
// kind of damage the issue lists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { keyFromSecretString, secretString, type SigningKey } from './keys.ts';
import { encodeKeyString } from './key-string.ts';
import { writeBaliFile } from './sign.ts';
import { verifyFile } from './verify.ts';
import { encodePaxGlobalHeader } from '../image/pax-global.ts';
import { SIGNER_RECORD } from './signer-hint.ts';

function newKey(): SigningKey {
  return keyFromSecretString(encodeKeyString('secret', new Uint8Array(randomBytes(32))));
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kraud-sign-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

/** A real tar made by GNU tar: text, a symlink, a bigger file. */
function makeTar(): Buffer {
  const src = path.join(work, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc', 'hello.txt'), 'hello bali\n');
  // Compressible (base64) so zlib emits Huffman blocks; see gzip-sealed.ts on stored blocks.
  fs.writeFileSync(path.join(src, 'blob.txt'), randomBytes(48 * 1024).toString('base64'));
  fs.symlinkSync('etc/hello.txt', path.join(src, 'link'));
  return execFileSync('tar', ['-C', src, '-cf', '-', '.']);
}

const key = newKey();
const tarBytes = makeTar();
const signedPath = path.join(work, 'signed.tar.gz');
let signed: Buffer;

test('a signed file keeps the tar bytes as they are and GNU tar lists and extracts it', async () => {
  const written = await writeBaliFile(signedPath, Readable.from([tarBytes]), key);
  assert.equal(written.signer, key.identity);
  assert.equal(written.tarBytes, tarBytes.length);
  signed = fs.readFileSync(signedPath);
  const plain = execFileSync('gzip', ['-dc', signedPath]);
  assert.equal(plain.length, tarBytes.length + 80);
  assert.ok(plain.subarray(0, tarBytes.length).equals(tarBytes), 'tar bytes unchanged');
  assert.ok(plain.subarray(tarBytes.length, tarBytes.length + 16).equals(Buffer.from('0000000000000000696b736967000000', 'hex')));
  const listing = execFileSync('tar', ['-tzf', signedPath]).toString();
  assert.match(listing, /etc\/hello\.txt/);
  const out = path.join(work, 'extracted');
  fs.mkdirSync(out);
  execFileSync('tar', ['-xzf', signedPath, '-C', out]); // throws on a non-zero exit
  assert.equal(fs.readFileSync(path.join(out, 'etc', 'hello.txt'), 'utf8'), 'hello bali\n');
  assert.equal(fs.readlinkSync(path.join(out, 'link')), 'etc/hello.txt');
});

test('verify accepts the signer and reports it; other keys and no keys are refused', async () => {
  const verdict = await verifyFile(signedPath, { trusted: [newKey().publicKey, key.publicKey] });
  assert.equal(verdict.signer, key.identity);
  assert.ok(verdict.trusted);
  await assert.rejects(verifyFile(signedPath, { trusted: [newKey().publicKey] }), /bad signature/);
  await assert.rejects(verifyFile(signedPath, { trusted: [] }), /no trusted identity/);
});

async function rejects(bytes: Buffer, why: string): Promise<void> {
  const p = path.join(work, 'candidate.tar.gz');
  fs.writeFileSync(p, bytes);
  await assert.rejects(verifyFile(p, { trusted: [key.publicKey] }), (err: Error) => {
    assert.ok(err.message.length > 0 && !err.message.includes('\n'), `one line for ${why}: ${err.message}`);
    return true;
  }, why);
}

test('200 random single-byte changes past the gzip MTIME/XFL/OS bytes are all rejected', async () => {
  for (let i = 0; i < 200; i++) {
    let pos = randomInt(signed.length - 6);
    if (pos >= 4) pos += 6; // skip bytes 4..9
    const bad = Buffer.from(signed);
    bad[pos] = (bad[pos] + 1 + randomInt(255)) & 0xff;
    await rejects(bad, `byte ${pos} changed`);
  }
});

test('the last deflate byte (padding only) and every byte of the end are covered', async () => {
  const header = Buffer.from(signed);
  header[3] |= 1; // FTEXT: a hint every reader ignores
  await rejects(header, "FTEXT flag set");
  for (let pos = signed.length - 30; pos < signed.length; pos++) {
    for (const delta of [1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80]) {
      const bad = Buffer.from(signed);
      bad[pos] = (bad[pos] + delta) & 0xff;
      await rejects(bad, `byte ${pos} + ${delta}`);
    }
  }
});

test('truncation at any point, appended bytes and a swapped trailer are rejected', async () => {
  const cuts = new Set<number>([1, 2, 9, 10, 11, signed.length - 1, signed.length - 8, signed.length - 9]);
  for (let i = 0; i < 60; i++) cuts.add(randomInt(1, signed.length));
  for (const cut of cuts) await rejects(signed.subarray(0, cut), `truncated at ${cut}`);
  await rejects(Buffer.alloc(0), 'empty file');
  await rejects(Buffer.concat([signed, Buffer.from([0])]), 'one zero byte appended');
  await rejects(Buffer.concat([signed, Buffer.alloc(4096)]), 'zeros appended');
  await rejects(Buffer.concat([signed, Buffer.from('garbage')]), 'garbage appended');
  await rejects(Buffer.concat([signed, signed]), 'second gzip member appended');
  // A trailer from another signed file (same key, other content) on this tar.
  const otherPath = path.join(work, 'other.tar.gz');
  await writeBaliFile(otherPath, Readable.from([Buffer.concat([tarBytes.subarray(0, tarBytes.length - 1024), Buffer.alloc(2048)])]), key);
  const otherTrailer = execFileSync('gzip', ['-dc', otherPath]).subarray(-80);
  const swapped = Buffer.concat([tarBytes, otherTrailer]);
  const swappedPath = path.join(work, 'swapped.tar.gz');
  await writeBaliFile(swappedPath, Readable.from([swapped]), null);
  await rejects(fs.readFileSync(swappedPath), 'swapped trailer');
});

test('unsigned files, non-gzip input and foreign signers get their own one-line reasons', async () => {
  const unsigned = path.join(work, 'unsigned.tar.gz');
  await writeBaliFile(unsigned, Readable.from([tarBytes]), null);
  await assert.rejects(verifyFile(unsigned, { trusted: [key.publicKey] }), /^KrError: no signature|no signature/);
  const notGzip = path.join(work, 'plain.tar');
  fs.writeFileSync(notGzip, tarBytes);
  await assert.rejects(verifyFile(notGzip, { trusted: [key.publicKey] }), /not gzip/);
  await assert.rejects(verifyFile(path.join(work, 'missing.tar.gz'), { trusted: [key.publicKey] }), /does not exist/);
  // A file that names its signer (as `bali pack` writes it) signed by someone else: "untrusted signer".
  const foreign = newKey();
  const hinted = Buffer.concat([encodePaxGlobalHeader({ [SIGNER_RECORD]: foreign.identity }), tarBytes]);
  const foreignPath = path.join(work, 'foreign.tar.gz');
  await writeBaliFile(foreignPath, Readable.from([hinted]), foreign);
  await assert.rejects(verifyFile(foreignPath, { trusted: [key.publicKey] }), new RegExp(`untrusted signer: signed by ${foreign.identity}`));
  const insecure = await verifyFile(foreignPath, { trusted: [key.publicKey], insecure: true });
  assert.equal(insecure.signer, foreign.identity);
  assert.equal(insecure.trusted, false);
  assert.equal(secretString(foreign).length, 56);
});

test('verification gives the same verdict for any read size', async () => {
  for (const size of [1, 7, 79, 80, 81, 512, 65536]) {
    const p = path.join(work, `chunks-${size}.tar.gz`);
    fs.copyFileSync(signedPath, p);
    const { openVerifiedTar } = await import('./verify.ts');
    const chunks: Buffer[] = [];
    for (let i = 0; i < signed.length; i += size) chunks.push(signed.subarray(i, i + size));
    const { tar, verdict } = openVerifiedTar(Readable.from(chunks), { trusted: [key.publicKey] });
    const out: Buffer[] = [];
    tar.on('data', (c: Buffer) => out.push(c));
    const v = await verdict;
    assert.equal(v.signer, key.identity);
    assert.ok(Buffer.concat(out).equals(tarBytes), `tar bytes passed through intact with ${size}-byte reads`);
  }
});
