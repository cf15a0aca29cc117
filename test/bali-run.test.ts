// bali run as an operator uses it: the caller becomes the service (same PID, signals, exit
// status), only the mount namespace is new, nothing runs before verification, nothing is
// left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { buildTestImage } from './kit/build-image.ts';
import { keyFromSecretString, type SigningKey } from '../src/bali/keys.ts';
import { encodeKeyString } from '../src/bali/key-string.ts';
import { packImage } from '../src/bali/pack.ts';

const repo = path.resolve(import.meta.dirname, '..');
const bali = path.join(repo, 'node_modules', '.bin', 'bali');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kraud-run-'));
const newKey = (): SigningKey => keyFromSecretString(encodeKeyString('secret', new Uint8Array(randomBytes(32))));
const key = newKey();
const imageFile = path.join(work, 'image.tar.gz');
let server: http.Server;
let base = '';
const tmpBefore = new Set(fs.readdirSync(os.tmpdir()));
/** The host's mounts, less the ones other test files make meanwhile (their kraud-* work dirs and network namespaces). */
function hostMounts(): string {
  const others = new RegExp(`^\\S+ \\S+ \\S+ \\S+ (${os.tmpdir()}/kraud-|/run/netns/kraud-)`);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => !others.test(l) || l.includes(work)).join('\n');
}
const mountsBefore = hostMounts();

function run(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(bali, ['run', ...args], { env: { PATH: '/usr/bin:/bin', ...opts.env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Asynchronous, so the HTTP server in this process keeps answering. */
function runAsync(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(bali, ['run', ...args], { env: { PATH: '/usr/bin:/bin' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

test('setup: a signed busybox image served over loopback HTTP', async () => {
  const built = await buildTestImage(path.join(work, 'img'));
  await packImage(built.image, imageFile, key);
  const bytes = fs.readFileSync(imageFile);
  const tampered = Buffer.from(bytes);
  tampered[tampered.length >> 1] ^= 0x20;
  const foreign = path.join(work, 'foreign.tar.gz');
  await packImage(built.image, foreign, newKey());
  const routes: Record<string, Buffer> = { '/good.tar.gz': bytes, '/tampered.tar.gz': tampered, '/foreign.tar.gz': fs.readFileSync(foreign) };
  server = http.createServer((req, res) => {
    if (req.url === '/truncated.tar.gz') {
      res.writeHead(200, { 'content-length': String(bytes.length) });
      res.end(bytes.subarray(0, bytes.length >> 1));
      res.socket?.destroy();
      return;
    }
    const body = routes[req.url ?? ''];
    if (!body) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

test('the caller becomes the service: same PID, host net and pid namespaces, own mount namespace, exit code', () => {
  const script = `echo "$$"; readlink /proc/self/ns/net; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; exec ${bali} run --identity ${key.identity} --entrypoint /bin/sh ${imageFile} -- -c 'echo $$; readlink /proc/self/ns/net; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; exit 7'`;
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 7, r.stderr);
  const [pid, net, pidns, mnt, pid2, net2, pidns2, mnt2] = r.stdout.trim().split('\n');
  assert.equal(pid2, pid, 'same PID');
  assert.equal(net2, net, 'host network namespace');
  assert.equal(pidns2, pidns, 'host pid namespace');
  assert.notEqual(mnt2, mnt, 'a new mount namespace');
});

test('SIGTERM to the caller PID reaches the service trap', async () => {
  const child = spawn('sh', ['-c', `exec ${bali} run --identity ${key.identity} --entrypoint /bin/sh ${imageFile} -- -c 'trap "echo got-term; exit 42" TERM; echo ready; while :; do sleep 0.1; done'`]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('ready')) child.kill('SIGTERM');
  });
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 42);
  assert.match(out, /got-term/);
});

test('the image config applies as docker would, and -e/-w/-u/-v override', () => {
  const hostDir = path.join(work, 'vol');
  fs.mkdirSync(hostDir);
  fs.writeFileSync(path.join(hostDir, 'in.txt'), 'from host\n');
  const hostFile = path.join(work, 'single.conf');
  fs.writeFileSync(hostFile, 'a file\n');
  const def = run(['--identity', key.identity, imageFile]);
  assert.equal(def.code, 0, def.err);
  assert.equal(def.out, 'hello from kraud\n', 'Entrypoint + Cmd of the image');
  assert.equal(def.err, '', 'bali prints nothing of its own');
  const r = run(
    ['--identity', key.identity, '-e', 'A=1', '-e', 'FROM_HOST', '-w', '/tmp', '-u', '0:0', '-v', `${hostDir}:/mnt/vol`, '-v', `${hostFile}:/etc/app.conf:ro`, '--entrypoint', '/bin/sh', imageFile, '--', '-c', 'env | sort; id -u; pwd; cat /mnt/vol/in.txt /etc/app.conf; echo out > /mnt/vol/out.txt; echo x > /etc/app.conf || echo read-only'],
    { env: { FROM_HOST: 'yes', SECRET_HOST_VAR: 'nope' } },
  );
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^A=1$/m);
  assert.match(r.out, /^FROM_HOST=yes$/m);
  assert.match(r.out, /^KRAUD=1$/m, 'image Env kept');
  assert.doesNotMatch(r.out, /SECRET_HOST_VAR/, 'nothing else from the host environment');
  assert.match(r.out, /^0\n\/tmp\nfrom host\na file\n/m);
  assert.match(r.out, /read-only/);
  assert.equal(fs.readFileSync(path.join(hostDir, 'out.txt'), 'utf8'), 'out\n');
});

test('--mem puts the service in a memory-limited cgroup under the caller\'s', () => {
  const r = run(['--identity', key.identity, '--mem', '64m', '--entrypoint', '/bin/sh', imageFile, '--', '-c', 'cat /proc/self/cgroup']);
  assert.equal(r.code, 0, r.err);
  const line = r.out.split('\n').find((l) => /:memory:|^0::/.test(l) && l.includes('bali-'));
  assert.ok(line, `a bali-<pid> memory cgroup in:\n${r.out}`);
  const cg = line!.split(':')[2];
  const v1 = path.join('/sys/fs/cgroup/memory', cg, 'memory.limit_in_bytes');
  const v2 = path.join('/sys/fs/cgroup', cg, 'memory.max');
  const limit = fs.existsSync(v1) ? fs.readFileSync(v1, 'utf8') : fs.existsSync(v2) ? fs.readFileSync(v2, 'utf8') : '(gone)';
  assert.ok(limit === '(gone)' || Number(limit) === 64 * 1024 * 1024, `limit ${limit}`);
});

test('tampered, foreign-signed, missing and truncated downloads: refused before anything runs', async () => {
  const marker = path.join(work, 'marker');
  fs.mkdirSync(marker);
  const args = (url: string) => ['--identity', key.identity, '-u', '0', '-v', `${marker}:/m`, '--entrypoint', '/bin/sh', url, '--', '-c', 'touch /m/ran'];
  for (const [name, pattern] of [
    ['tampered', /bad signature|corrupt|gzip/],
    ['foreign', /untrusted signer/],
    ['missing', /HTTP 404/],
    ['truncated', /truncated|closed|ends early/],
  ] as const) {
    const r = await runAsync(args(`${base}/${name}.tar.gz`));
    assert.equal(r.code, 125, `${name}: ${r.err}`);
    assert.match(r.err, pattern, name);
    assert.equal(r.err.trim().split('\n').length, 1, `one line for ${name}: ${r.err}`);
    assert.deepEqual(fs.readdirSync(marker), [], `${name}: the image's command never ran`);
  }
  const good = await runAsync(args(`${base}/good.tar.gz`));
  assert.equal(good.code, 0, good.err);
  assert.deepEqual(fs.readdirSync(marker), ['ran'], 'the same command runs from the genuine file');
  const noTrust = run([imageFile]);
  assert.equal(noTrust.code, 125);
  assert.match(noTrust.err, /refusing to run: no --identity/);
  const insecure = run(['--insecure-skip-verify', imageFile]);
  assert.equal(insecure.code, 0);
  assert.match(insecure.err, /WARNING: running a file signed by .*not a trusted identity/);
});

test('hostile tars signed by a trusted key are still refused by bali run, nothing lands outside', async () => {
  const { encodeHeader, END_OF_ARCHIVE, padding } = await import('../src/image/tar/tar-writer.ts');
  const { writeBaliFile } = await import('../src/bali/sign.ts');
  const { Readable } = await import('node:stream');
  const outside = `kraud-escape-${process.pid}`;
  const entry = (p: string, type: 'file' | 'symlink' | 'link' | 'dir', extra: { linkname?: string; data?: string } = {}) => {
    const data = Buffer.from(extra.data ?? '');
    const h = encodeHeader({ path: p, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: 0, size: type === 'file' ? data.length : 0, linkname: extra.linkname ?? '', devmajor: 0, devminor: 0, xattrs: null });
    return type === 'file' ? [h, data, padding(data.length)] : [h];
  };
  const kinds: Record<string, Buffer[]> = {
    'dot-dot': entry(`../../../../tmp/${outside}`, 'file', { data: 'x' }),
    'symlink then write': [...entry('bin', 'dir'), ...entry('esc', 'symlink', { linkname: '/tmp' }), ...entry(`esc/${outside}`, 'file', { data: 'x' })],
    'hardlink out': entry('passwd', 'link', { linkname: '/etc/passwd' }),
  };
  for (const [name, parts] of Object.entries(kinds)) {
    const file = path.join(work, `hostile-${name.replace(/\W+/g, '-')}.tar.gz`);
    await writeBaliFile(file, Readable.from([Buffer.concat([...parts, END_OF_ARCHIVE])]), key);
    const r = await runAsync(['--identity', key.identity, '--entrypoint', '/bin/true', file]);
    assert.equal(r.code, 125, `${name}: ${r.err}`);
    assert.match(r.err, /^bali: tar entry .*\n$/, `${name}: one line naming the entry`);
    assert.ok(!fs.existsSync(`/tmp/${outside}`), `${name}: nothing outside the root`);
  }
});

test('nothing is left behind: host mounts and temp dirs as before', () => {
  server.close();
  assert.equal(hostMounts(), mountsBefore);
  // Other test files run at the same time and make their own kraud-* work dirs; anything else is ours.
  const now = fs.readdirSync(os.tmpdir()).filter((f) => !tmpBefore.has(f) && !f.startsWith('kraud-'));
  assert.deepEqual(now, []);
  fs.rmSync(work, { recursive: true, force: true });
});
