// bali build: a cached rebuild of an unchanged 5-step Dockerfile against the first build of it
// (fresh cache), both through the CLI. The issue asks for the ratio to be reported.
import fs from 'node:fs';
import path from 'node:path';
import { buildTestImage } from '../test/kit/build-image.ts';
import { packImage } from '../src/bali/pack.ts';
import { loadOrCreateKey } from '../src/bali/keys.ts';
import { median, sh, type Row } from './lib.ts';

export async function benchBuild(work: string, repo: string): Promise<Row[]> {
  const dir = path.join(work, 'build-bench');
  const ctx = path.join(dir, 'ctx');
  fs.mkdirSync(path.join(ctx, 'app'), { recursive: true });
  const env = { ...process.env, IDENTITYKIT_PATH: path.join(dir, 'ik'), IDENTITYKIT_SECRET: '' };
  const built = await buildTestImage(path.join(dir, 'img'), { extraBytes: 20 << 20 });
  await packImage(built.image, path.join(ctx, 'base.tar.gz'), loadOrCreateKey(env));
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(ctx, 'app', `f${i}.txt`), `file ${i}\n`.repeat(200));
  fs.writeFileSync(
    path.join(ctx, 'Dockerfile'),
    'FROM ./base.tar.gz\nUSER root\nENV APP=/srv/app\nCOPY app/ /srv/app/\nRUN cat /srv/app/*.txt | wc -l > /srv/lines\nCMD ["cat", "/srv/lines"]\n',
  );
  const bali = path.join(repo, 'node_modules', '.bin', 'bali');
  const first: number[] = [];
  const cached: number[] = [];
  for (let i = 0; i < 5; i++) {
    const cache = path.join(dir, `cache-${i}`);
    const buildEnv = { ...env, KRAUD_BUILD_CACHE: cache };
    for (const into of [first, cached]) {
      const t0 = process.hrtime.bigint();
      await sh(bali, ['build', path.join(dir, 'out.tar.gz'), ctx], { env: buildEnv });
      into.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    fs.rmSync(cache, { recursive: true, force: true });
  }
  return [
    {
      name: 'bali build: cached rebuild of an unchanged 5-step Dockerfile (FROM a 22 MB bali file), CLI',
      ours: median(cached),
      baseline: median(first),
      baselineName: 'first build, empty cache',
      goal: 'report',
    },
  ];
}
