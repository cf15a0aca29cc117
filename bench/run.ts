// `make bench`: every benchmark, each against a baseline measured side by side in this run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatRow, header, type Row } from './lib.ts';
import { benchBuild } from './build.bench.ts';
import { benchCradle } from './cradle.bench.ts';
import { benchFlatten } from './flatten.bench.ts';
import { benchKrd } from './krd.bench.ts';
import { benchPull } from './pull.bench.ts';
import { benchRun } from './run.bench.ts';
import { benchVerify } from './verify.bench.ts';

const repo = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kraud-bench-'));
const rows: Row[] = [];
try {
  const only = process.argv[2];
  const benches: [string, (w: string, r: string) => Promise<Row[]>][] = [
    ['verify', benchVerify],
    ['pull', benchPull],
    ['flatten', benchFlatten],
    ['run', benchRun],
    ['build', benchBuild],
    ['krd', benchKrd],
    ['cradle', benchCradle],
  ];
  for (const [name, fn] of benches) {
    if (only && only !== name) continue;
    process.stderr.write(`bench: ${name}...\n`);
    rows.push(...(await fn(work, repo)));
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(header());
for (const r of rows) console.log(formatRow(r));
for (const r of rows) if (r.note) console.log(`- ${r.name}: ${r.note}`);
