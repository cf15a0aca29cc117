// bali build with the real CLI: a multi-stage Dockerfile using most instructions, the step
// cache, failures, and the result run with bali run.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { buildTestImage } from './kit/build-image.ts';
import { packImage } from '../src/bali/pack.ts';
import { loadOrCreateKey } from '../src/bali/keys.ts';

const repo = path.resolve(import.meta.dirname, '..');
const bali = path.join(repo, 'node_modules', '.bin', 'bali');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kraud-build-'));
const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: work, IDENTITYKIT_PATH: path.join(work, 'ik'), KRAUD_BUILD_CACHE: path.join(work, 'cache') };
const ctx = path.join(work, 'ctx');
let server: http.Server;
let id = '';
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

export function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(bali, args, { env: { ...env, ...extraEnv }, cwd: work });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

const dockerfile = (port: number) =>
  [
    '# syntax=docker/dockerfile:1',
    '# escape=\\',
    'ARG BASE=./base.tar.gz',
    'FROM ${BASE} AS builder',
    'USER root',
    'ARG GREETING=hello',
    'ENV APP_HOME=/srv/app \\',
    '    MODE=build',
    'WORKDIR ${APP_HOME}',
    'COPY src/ ./src/',
    'RUN echo "$GREETING from $MODE" > built.txt',
    'RUN ["/bin/sh", "-c", "echo exec-form > exec.txt"]',
    'RUN <<EOF',
    'echo heredoc one > /srv/app/heredoc.txt',
    'echo heredoc two >> /srv/app/heredoc.txt',
    'EOF',
    'COPY <<EOT /srv/app/inline.txt',
    'inline ${MODE}',
    'EOT',
    '',
    'FROM builder AS unused',
    'RUN exit 3',
    '',
    'FROM ${BASE}',
    'SHELL ["/bin/sh", "-c"]',
    'LABEL org.example.name="test app" org.example.stage=final',
    'MAINTAINER ops@example.org',
    'COPY --from=builder /srv/app/built.txt /srv/app/exec.txt /srv/app/heredoc.txt /srv/app/inline.txt /app/',
    'COPY --chown=1000:1000 --chmod=0755 src/hello.sh /app/hello.sh',
    'ADD files.tar.gz /app/unpacked/',
    `ADD --chmod=0644 http://127.0.0.1:${port}/remote.txt /app/remote.txt`,
    'EXPOSE 8080 9090/udp',
    'VOLUME ["/data"]',
    'STOPSIGNAL SIGINT',
    'HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD ["/bin/true"]',
    'USER 1000:1000',
    'WORKDIR /app',
    'ENV GREETING_FILE=/app/built.txt',
    'ENTRYPOINT ["/bin/sh"]',
    'CMD ["/app/hello.sh"]',
    '',
  ].join('\n');

test('setup: a context, a base image and an HTTP server for ADD', async () => {
  const built = await buildTestImage(path.join(work, 'img'));
  const key = loadOrCreateKey(env);
  id = key.identity;
  server = http.createServer((req, res) => (req.url === '/remote.txt' ? res.end('remote content\n') : res.writeHead(404).end()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  fs.mkdirSync(path.join(ctx, 'src'), { recursive: true });
  fs.mkdirSync(path.join(ctx, 'files'));
  fs.mkdirSync(path.join(ctx, 'ignored'));
  await packImage(built.image, path.join(ctx, 'base.tar.gz'), key);
  fs.writeFileSync(path.join(ctx, 'src', 'hello.sh'), '#!/bin/sh\ncat /app/built.txt /app/exec.txt /app/heredoc.txt /app/inline.txt /app/unpacked/a.txt /app/remote.txt\nid -u\n');
  fs.writeFileSync(path.join(ctx, 'ignored', 'secret'), 'not in the image\n');
  fs.writeFileSync(path.join(ctx, 'files', 'a.txt'), 'from the archive\n');
  const tgz = spawn('tar', ['-czf', path.join(ctx, 'files.tar.gz'), '-C', path.join(ctx, 'files'), '.']);
  await new Promise((r) => tgz.on('exit', r));
  fs.writeFileSync(path.join(ctx, '.dockerignore'), 'ignored\nfiles/\n');
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile(port));
});

test('a multi-stage Dockerfile builds, is signed by the local key, and runs with its config', async () => {
  const r = await cli(['build', path.join(work, 'app.tar.gz'), '--build-arg', 'GREETING=bonjour', ctx]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^sha256:[0-9a-f]{64}\n$/);
  assert.doesNotMatch(r.err, /exit 3/, 'the unused stage is skipped');
  assert.equal((await cli(['verify', path.join(work, 'app.tar.gz'), '--identity', id])).out, `OK ${id}\n`);
  const info = JSON.parse((await cli(['inspect', path.join(work, 'app.tar.gz'), '--json'])).out).config.config;
  assert.deepEqual(info.Entrypoint, ['/bin/sh']);
  assert.deepEqual(info.Cmd, ['/app/hello.sh']);
  assert.equal(info.WorkingDir, '/app');
  assert.equal(info.User, '1000:1000');
  assert.deepEqual(info.ExposedPorts, { '8080/tcp': {}, '9090/udp': {} });
  assert.deepEqual(Object.keys(info.Volumes).sort(), ['/data']);
  assert.equal(info.StopSignal, 'SIGINT');
  assert.deepEqual(info.Healthcheck, { Test: ['CMD', '/bin/true'], Interval: 5e9, Timeout: 2e9, Retries: 3 });
  assert.equal(info.Labels['org.example.name'], 'test app');
  assert.equal(info.Labels.maintainer, 'ops@example.org');
  assert.ok(info.Env.includes('GREETING_FILE=/app/built.txt'));
  const run = await cli(['run', '--identity', id, path.join(work, 'app.tar.gz')]);
  assert.equal(run.code, 0, run.err);
  assert.equal(run.out, 'bonjour from build\nexec-form\nheredoc one\nheredoc two\ninline build\nfrom the archive\nremote content\n1000\n');
  const listing = await new Promise<string>((resolve) => {
    const t = spawn('tar', ['-tvzf', path.join(work, 'app.tar.gz')]);
    let s = '';
    t.stdout.on('data', (d: Buffer) => (s += d.toString()));
    t.on('exit', () => resolve(s));
  });
  assert.match(listing, /-rwxr-xr-x 1000\/1000 .* \.\/app\/hello\.sh/);
  assert.doesNotMatch(listing, /secret|ignored/);
});

test('an unchanged rebuild hits the cache at every step and gives the same bytes; a change reruns only what follows', async () => {
  const again = await cli(['build', path.join(work, 'again.tar.gz'), '--build-arg', 'GREETING=bonjour', ctx]);
  assert.equal(again.code, 0, again.err);
  const lines = again.err.split('\n');
  const steps = lines.filter((l) => /^Step \d+\/\d+ : (?!FROM)/.test(l)).length;
  const cached = lines.filter((l) => l === ' ---> Using cache').length;
  assert.ok(steps > 15 && cached === steps, `${cached} of ${steps} steps from the cache`);
  assert.ok(fs.readFileSync(path.join(work, 'again.tar.gz')).equals(fs.readFileSync(path.join(work, 'app.tar.gz'))), 'same bytes');
  fs.appendFileSync(path.join(ctx, 'src', 'hello.sh'), 'echo changed\n');
  const changed = await cli(['build', path.join(work, 'changed.tar.gz'), '--build-arg', 'GREETING=bonjour', ctx]);
  assert.equal(changed.code, 0, changed.err);
  const after = changed.err.split('\n');
  const copyAt = after.findIndex((l) => l.endsWith('COPY src/ ./src/'));
  assert.match(after[copyAt + 1], /^ ---> done in /, 'the COPY of the changed file reruns');
  assert.equal(after[copyAt - 1], ' ---> Using cache', 'steps before it come from the cache');
  assert.match(after[after.findIndex((l) => l.includes('RUN /bin/sh -c echo "$GREETING from $MODE"')) + 1], /^ ---> done in /, 'and the steps after it');
});

test('a failing RUN stops the build with its exit code and names the step; no output file', async () => {
  fs.writeFileSync(path.join(ctx, 'Dockerfile.fail'), 'FROM ./base.tar.gz\nUSER root\nRUN echo before\nRUN exit 7\nRUN echo never\n');
  const out = path.join(work, 'fail.tar.gz');
  const r = await cli(['build', out, '-f', path.join(ctx, 'Dockerfile.fail'), ctx]);
  assert.equal(r.code, 7);
  assert.match(r.err, /bali: Dockerfile\.fail:4: RUN exit 7 failed with exit code 7\n$/);
  assert.doesNotMatch(r.err, /never/);
  assert.ok(!fs.existsSync(out));
  const badTarget = await cli(['build', out, '--target', 'nope', ctx]);
  assert.equal(badTarget.code, 1);
  assert.match(badTarget.err, /target stage "nope" not found; stages: builder, unused/);
});

after(() => {
  server?.closeAllConnections();
  server?.close();
});

test('FROM a registry reference pulls, flattens and builds on it', async () => {
  const { startRegistry } = await import('./kit/registry.ts');
  const { push } = await import('../src/image/registry/index.ts');
  const registry = await startRegistry();
  try {
    const built = await buildTestImage(path.join(work, 'img-registry'));
    const ref = `${registry.host}/kraud/base:v1`;
    await push(built.image, ref);
    const dir = path.join(work, 'ctx-registry');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${ref}\nUSER root\nRUN echo pulled > /pulled.txt\nCMD ["cat /pulled.txt"]\n`);
    const out = path.join(work, 'from-registry.tar.gz');
    const r = await cli(['build', out, dir], { KRAUD_STORE: path.join(work, 'store') });
    assert.equal(r.code, 0, r.err);
    const run = await cli(['run', '--identity', id, out]);
    assert.equal(run.out, 'pulled\n', run.err);
  } finally {
    await registry.stop();
  }
});
