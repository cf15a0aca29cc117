// verify of a ≥100 MB signed file vs `gzip -dc FILE | sha512sum` (what verification costs at
// the least: decompress and hash). Goal: ≥ 0.9× the baseline's throughput.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { keyFromSecretString } from '../src/bali/keys.ts';
import { encodeKeyString } from '../src/bali/key-string.ts';
import { writeBaliFile } from '../src/bali/sign.ts';
import { sh, sideBySide, type Row } from './lib.ts';

export async function benchVerify(work: string, repo: string): Promise<Row[]> {
  // Real binary and text content (the pinned node binary is ~120 MB), as a rootfs would have.
  const tar = spawnSync('tar', ['-C', repo, '-cf', '-', 'node_modules/node/bin', 'node_modules/typescript/lib'], { maxBuffer: 1 << 30 }).stdout;
  const key = keyFromSecretString(encodeKeyString('secret', new Uint8Array(randomBytes(32))));
  const file = path.join(work, 'verify-bench.tar.gz');
  await writeBaliFile(file, Readable.from([tar]), key);
  const bali = path.join(repo, 'node_modules', '.bin', 'bali');
  const t = await sideBySide(
    5,
    () => sh(bali, ['verify', file, '--identity', key.identity]),
    () => sh('sh', ['-c', `gzip -dc '${file}' | sha512sum >/dev/null`]),
  );
  const row: Row = {
    name: `bali verify (${(tar.length / 1e6).toFixed(0)} MB tar, ${(fs.statSync(file).size / 1e6).toFixed(0)} MB gz, CLI incl. start)`,
    ours: t.ours,
    baseline: t.baseline,
    baselineName: 'gzip -dc | sha512sum',
    bytes: tar.length,
    goal: '≥ 0.9× throughput',
  };
  fs.rmSync(file);
  return [row];
}
