// docker cp through krd with the real docker 28 CLI, both ways: files, directories (docker's
// "dir" vs "dir/." naming), tar streams on stdin/stdout, created and exited containers, bind
// mounts seen as the container sees them; and through the API: the path-stat header, a hostile
// tar refused, symlinks that cannot lead out of the container's root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { encodeHeader, END_OF_ARCHIVE, padding } from '../src/image/tar/tar-writer.ts';
import type { TarHeader } from '../src/image/tar/tar-header.ts';
import { startKrdWithImage, stopKrdFixture, type KrdFixture } from './kit/krd-image.ts';

let f: KrdFixture;
let host: string;

before(async () => {
  f = await startKrdWithImage('kraud-krd-cp-', { Cmd: ['sh'] });
  host = join(f.work, 'host');
  fs.mkdirSync(host);
  const run = f.krd.docker(['run', '-d', '--name', 'c1', '-v', `${host}:/mnt/host`, f.img, 'sleep', '300'], { timeout: 60_000 });
  assert.equal(run.code, 0, run.stderr);
  const setup = f.krd.docker(['exec', 'c1', 'sh', '-c', 'mkdir -p /srv/d/sub && echo a > /srv/d/a && echo b > /srv/d/sub/b && ln -s a /srv/d/l && ln -s /etc /srv/etclink && ln -s / /srv/rootlink']);
  assert.equal(setup.code, 0, setup.stderr);
});

after(() => stopKrdFixture(f ?? {}));

function api(method: string, path: string, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: f.krd.socket, method, path, headers: body ? { 'Content-Type': 'application/x-tar', 'Content-Length': body.length } : {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function tarOf(entries: (Partial<TarHeader> & { path: string; data?: string })[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const h: TarHeader = { type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: 1_700_000_000, size: data.length, linkname: '', devmajor: 0, devminor: 0, xattrs: null, ...e };
    parts.push(encodeHeader(h), data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** Entry names of a tar (GNU tar lists them). */
function names(tar: Buffer): string[] {
  const r = spawnSync('tar', ['-t'], { input: tar });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout.toString().trim().split('\n').sort();
}

const docker = (args: string[], input?: string) => f.krd.docker(args, { input });
const dockerRaw = (args: string[], input?: Buffer) => spawnSync('docker', args, { env: f.krd.env, input, timeout: 30_000 });

test('docker cp a file and a directory out of a running container', () => {
  const out = join(f.work, 'out1');
  fs.mkdirSync(out);
  let r = docker(['cp', 'c1:/srv/d/a', join(out, 'a.txt')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(join(out, 'a.txt'), 'utf8'), 'a\n');
  r = docker(['cp', 'c1:/srv/d', join(out, 'copy')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(join(out, 'copy/sub/b'), 'utf8'), 'b\n');
  assert.equal(fs.readlinkSync(join(out, 'copy/l')), 'a');
  // into an existing directory: the directory keeps its name
  r = docker(['cp', 'c1:/srv/d', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(join(out, 'd/a'), 'utf8'), 'a\n');
});

test('docker cp CTR:/dir - and CTR:/dir/. - name the entries as docker does', () => {
  let r = dockerRaw(['cp', 'c1:/srv/d', '-']);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(names(r.stdout), ['d/', 'd/a', 'd/l', 'd/sub/', 'd/sub/b']);
  r = dockerRaw(['cp', 'c1:/srv/d/.', '-']);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(names(r.stdout), ['./', './a', './l', './sub/', './sub/b']);
  r = dockerRaw(['cp', 'c1:/srv/d/sub/b', '-']);
  assert.deepEqual(names(r.stdout), ['b']);
});

test('docker cp into a running container: a file, a directory, a tar on stdin', () => {
  const src = join(f.work, 'src');
  fs.mkdirSync(join(src, 'tree/deep'), { recursive: true });
  fs.writeFileSync(join(src, 'one.txt'), 'one\n');
  fs.writeFileSync(join(src, 'tree/deep/x'), 'x\n');
  let r = docker(['cp', join(src, 'one.txt'), 'c1:/tmp/renamed.txt']);
  assert.equal(r.code, 0, r.stderr);
  r = docker(['cp', join(src, 'tree'), 'c1:/tmp/']);
  assert.equal(r.code, 0, r.stderr);
  const tar = spawnSync('tar', ['-c', '-C', src, 'one.txt']).stdout;
  const piped = dockerRaw(['cp', '-', 'c1:/srv'], tar);
  assert.equal(piped.status, 0, piped.stderr.toString());
  const seen = docker(['exec', 'c1', 'sh', '-c', 'cat /tmp/renamed.txt /tmp/tree/deep/x /srv/one.txt; stat -c %u /tmp/renamed.txt']);
  assert.equal(seen.stdout, 'one\nx\none\n0\n', seen.stderr);
});

test('a bind mount is seen through docker cp as the container sees it', () => {
  fs.writeFileSync(join(host, 'from-host'), 'hh\n');
  const r = dockerRaw(['cp', 'c1:/mnt/host/from-host', '-']);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(names(r.stdout), ['from-host']);
  const src = join(f.work, 'to-bind');
  fs.writeFileSync(src, 'into bind\n');
  assert.equal(docker(['cp', src, 'c1:/mnt/host/']).code, 0);
  assert.equal(fs.readFileSync(join(host, 'to-bind'), 'utf8'), 'into bind\n');
});

test('docker cp into a created container, then out of it once exited', () => {
  const c = docker(['create', '--name', 'made', f.img, 'cat', '/etc/greeting']);
  assert.equal(c.code, 0, c.stderr);
  const src = join(f.work, 'greeting');
  fs.writeFileSync(src, 'hello from cp\n');
  let r = docker(['cp', src, 'made:/etc/greeting']);
  assert.equal(r.code, 0, r.stderr);
  r = docker(['start', '-a', 'made']);
  assert.equal(r.stdout, 'hello from cp\n', r.stderr);
  // exited: the filesystem is mounted for the copy and unmounted after
  const back = join(f.work, 'back');
  r = docker(['cp', 'made:/etc/greeting', back]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(back, 'utf8'), 'hello from cp\n');
  // and into it while exited (the write goes to its own layer: read back through a new view)
  fs.writeFileSync(src, 'second\n');
  r = docker(['cp', src, 'made:/etc/greeting']);
  assert.equal(r.code, 0, r.stderr);
  const again = dockerRaw(['cp', 'made:/etc/greeting', '-']);
  assert.equal(spawnSync('tar', ['-xO'], { input: again.stdout }).stdout.toString(), 'second\n');
});

test('docker cp of a missing path: 404 with docker\'s message', async () => {
  const r = docker(['cp', 'c1:/no/such/file', join(f.work, 'x')]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Could not find the file \/no\/such\/file in container c1/);
  const head = await api('HEAD', '/containers/c1/archive?path=/nope');
  assert.equal(head.status, 404);
  const empty = await api('GET', '/containers/c1/archive?path=');
  assert.equal(empty.status, 400);
});

test('HEAD archive: the path-stat header in docker\'s shape (Go FileMode bits)', async () => {
  const dir = await api('HEAD', '/containers/c1/archive?path=/srv/d');
  assert.equal(dir.status, 200);
  const st = JSON.parse(Buffer.from(String(dir.headers['x-docker-container-path-stat']), 'base64').toString());
  assert.equal(st.name, 'd');
  assert.equal(st.mode, 2 ** 31 + 0o755);
  assert.equal(st.linkTarget, '');
  assert.ok(!Number.isNaN(Date.parse(st.mtime)));
  const link = await api('HEAD', '/containers/c1/archive?path=/srv/etclink');
  const ls = JSON.parse(Buffer.from(String(link.headers['x-docker-container-path-stat']), 'base64').toString());
  assert.equal(ls.mode, 2 ** 27 + 0o777);
  assert.equal(ls.linkTarget, '/etc');
});

test('symlinks in the container never lead out of its root', () => {
  const name = `kraud-cp-${randomBytes(4).toString('hex')}`;
  const src = join(f.work, name);
  fs.writeFileSync(src, 'inside\n');
  // an absolute link to /etc: the copy lands in the container's /etc, not the host's
  let r = docker(['cp', src, 'c1:/srv/etclink/']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!fs.existsSync(join('/etc', name)), 'nothing written to the host /etc');
  assert.equal(docker(['exec', 'c1', 'cat', `/etc/${name}`]).stdout, 'inside\n');
  // reading through a link to / reads the container's files (the host has no /srv/d/a)
  const inContainer = 'a\n';
  const viaLink = dockerRaw(['cp', 'c1:/srv/rootlink/srv/d/a', '-']);
  assert.equal(viaLink.status, 0, viaLink.stderr.toString());
  const x = spawnSync('tar', ['-xO'], { input: viaLink.stdout });
  assert.equal(x.stdout.toString(), inContainer);
  // ".." cannot climb out either
  const up = dockerRaw(['cp', 'c1:/../../../../srv/d/a', '-']);
  assert.equal(spawnSync('tar', ['-xO'], { input: up.stdout }).stdout.toString(), inContainer);
});

test('a hostile tar through the API is refused and writes nothing outside', async () => {
  const mark = `kraud-evil-${randomBytes(4).toString('hex')}`;
  const climb = await api('PUT', '/containers/c1/archive?path=/tmp', tarOf([{ path: `../../../../../../tmp/${mark}`, data: 'x' }]));
  assert.equal(climb.status, 400, climb.body.toString());
  assert.match(JSON.parse(climb.body.toString()).message, /climbs above the root/);
  assert.ok(!fs.existsSync(join('/tmp', mark)));
  // a symlink to / then a file "through" it
  const through = await api('PUT', '/containers/c1/archive?path=/tmp', tarOf([{ path: 'esc', type: 'symlink', linkname: '/' }, { path: `esc/tmp/${mark}`, data: 'x' }]));
  assert.equal(through.status, 400, through.body.toString());
  assert.ok(!fs.existsSync(join('/tmp', mark)));
  // an absolute name lands inside the target directory, as with docker
  const abs = await api('PUT', `/containers/c1/archive?path=/tmp&noOverwriteDirNonDir=1`, tarOf([{ path: `/${mark}`, data: 'abs' }]));
  assert.equal(abs.status, 200, abs.body.toString());
  assert.ok(!fs.existsSync(join('/', mark)));
  assert.equal(docker(['exec', 'c1', 'cat', `/tmp/${mark}`]).stdout, 'abs');
  // noOverwriteDirNonDir: a file does not replace a directory
  const clash = await api('PUT', '/containers/c1/archive?path=/srv&noOverwriteDirNonDir=1', tarOf([{ path: 'd', data: 'file' }]));
  assert.equal(clash.status, 400, clash.body.toString());
  assert.equal(docker(['exec', 'c1', 'cat', '/srv/d/a']).stdout, 'a\n');
  // the target must be a directory
  const notDir = await api('PUT', '/containers/c1/archive?path=/srv/d/a', tarOf([{ path: 'x', data: 'x' }]));
  assert.equal(notDir.status, 400);
  assert.match(JSON.parse(notDir.body.toString()).message, /not a directory/);
});
