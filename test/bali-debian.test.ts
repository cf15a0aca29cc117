// A real distribution through bali: a Debian minbase rootfs (debootstrap, cached between runs)
// signed with `bali sign`, a Dockerfile FROM it that apt-get installs a package in RUN (host
// network to the Debian mirror, the package registry tests may use), and the result run with
// `bali run`.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { debianMinbaseTar } from './kit/debian-rootfs.ts';

const repo = path.resolve(import.meta.dirname, '..');
const bali = path.join(repo, 'node_modules', '.bin', 'bali');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kraud-debian-'));
const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: work, IDENTITYKIT_PATH: path.join(work, 'ik'), KRAUD_BUILD_CACHE: path.join(work, 'cache') };
after(() => fs.rmSync(work, { recursive: true, force: true }));

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(bali, args, { env, cwd: work });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

test('FROM a signed Debian minbase, RUN apt-get install, then bali run the result', { timeout: 600_000 }, async () => {
  const rootfs = debianMinbaseTar();
  const ctx = path.join(work, 'ctx');
  fs.mkdirSync(ctx);
  const id = (await cli(['id'])).out.trim(); // creates the signing key
  const signed = await cli(['sign', rootfs, path.join(ctx, 'debian.tar.gz')]);
  assert.equal(signed.code, 0, signed.err);
  fs.writeFileSync(
    path.join(ctx, 'Dockerfile'),
    [
      'FROM ./debian.tar.gz',
      'ENV DEBIAN_FRONTEND=noninteractive',
      'RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends hello >/dev/null && rm -rf /var/lib/apt/lists/*',
      'CMD ["hello", "-g", "hello from debian"]',
      '',
    ].join('\n'),
  );
  const built = await cli(['build', path.join(work, 'hello.tar.gz'), ctx]);
  assert.equal(built.code, 0, built.err);
  const run = await cli(['run', '--identity', id, path.join(work, 'hello.tar.gz')]);
  assert.equal(run.code, 0, run.err);
  assert.equal(run.out, 'hello from debian\n');
  const dpkg = await cli(['run', '--identity', id, path.join(work, 'hello.tar.gz'), '--', 'dpkg-query', '-W', '-f', '${Status}', 'hello']);
  assert.equal(dpkg.out, 'install ok installed');
});
