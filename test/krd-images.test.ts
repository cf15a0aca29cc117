// krd's foundation driven by the real docker CLI (client 28): version negotiation, info, pull
// from a loopback registry with progress, images/tag/inspect/history, save → rmi → load, bali
// files through docker load, docker's error messages, kill -9 and restart, TCP with mutual TLS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startRegistry, freePort, type TestRegistry } from './kit/registry.ts';
import { buildTestImage, type BuiltImage } from './kit/build-image.ts';
import { startKrd, pingUnix, KRD_BIN, type TestKrd } from './kit/krd.ts';
import { push } from '../src/image/registry/index.ts';
import { packImage } from '../src/bali/pack.ts';
import { keyFromSecretString } from '../src/bali/keys.ts';

const SECRET = 'cCOMZM5Z2HHCSVE65EDABQYXZHFA4AFH7NCTFG2VJ6V5OX7OXI33PMUQ';
const IDENTITY = 'cDFXSA73D3H4MOM7HPVUYWUOABQI7D5ERUR7QXOQPJD2HOYYSJCIYFWY';

function request(socket: string, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('krd images with the docker CLI', () => {
  let work: string;
  let registry: TestRegistry;
  let built: BuiltImage;
  let krd: TestKrd;
  let ref: string;
  let imageId: string;

  before(async () => {
    work = await fsp.mkdtemp(join(tmpdir(), 'kraud-krd-test-'));
    [registry, built] = await Promise.all([startRegistry(), buildTestImage(join(work, 'image'))]);
    ref = `${registry.host}/kit/app:v1`;
    await push(built.image, ref);
    imageId = built.image.manifest.config.digest;
    krd = await startKrd({ socket: join(work, 'krd.sock'), dataRoot: join(work, 'data'), loopbackPorts: [registry.port] });
  });

  after(async () => {
    await krd?.stop();
    await registry?.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  test('docker version negotiates API 1.50 and shows the server', () => {
    const r = krd.docker(['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Client.APIVersion}}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '0.1.0-kraud 1.50 1.41 1.50');
  });

  test('docker info shows counts, runtime and data root', () => {
    const r = krd.docker(['info', '--format', '{{.Containers}} {{.Images}} {{.DefaultRuntime}} {{.DockerRootDir}} {{.Driver}}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `0 0 ns ${krd.dataRoot} overlayfs`);
  });

  test('API versions, _ping headers and unknown routes answer like dockerd', async () => {
    const old = await request(krd.socket, 'GET', '/v1.40/version');
    assert.equal(old.status, 400);
    assert.match(JSON.parse(old.body).message, /^client version 1\.40 is too old\. Minimum supported API version is 1\.41/);
    const newer = await request(krd.socket, 'GET', '/v1.51/version');
    assert.equal(newer.status, 400);
    assert.equal(JSON.parse(newer.body).message, 'client version 1.51 is too new. Maximum supported API version is 1.50');
    assert.equal((await request(krd.socket, 'GET', '/v1.41/version')).status, 200);
    const nope = await request(krd.socket, 'GET', '/v1.50/nope');
    assert.equal(nope.status, 404);
    assert.deepEqual(JSON.parse(nope.body), { message: 'page not found' });
    const bad = await request(krd.socket, 'GET', '/images/json?filters=%7Bnot-json');
    assert.equal(bad.status, 400);
    const head = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
      const req = http.request({ socketPath: krd.socket, method: 'HEAD', path: '/_ping' }, (res) => {
        res.resume();
        resolve(res.headers);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(head['api-version'], '1.50');
    assert.equal(head['docker-experimental'], 'false');
    assert.equal(head.ostype, 'linux');
  });

  test('docker pull from a loopback registry: progress lines and the digest', () => {
    const r = krd.docker(['pull', ref]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^v1: Pulling from kit\/app$/m);
    assert.match(r.stdout, /: Pull complete$/m);
    assert.match(r.stdout, new RegExp(`^Digest: ${built.image.manifestDigest}$`, 'm'));
    assert.match(r.stdout, new RegExp(`^Status: Downloaded newer image for ${ref}$`, 'm'));
    const again = krd.docker(['pull', ref]);
    assert.match(again.stdout, /^Status: Image is up to date for /m);
  });

  test('docker login checks credentials; pull sends them (X-Registry-Auth)', async () => {
    const user = { username: 'alice', password: 's3cret' };
    const locked = await startRegistry({ users: [user] });
    try {
      await krd.reachLoopback(locked.port);
      const privateRef = `${locked.host}/team/app:v1`;
      await push(built.image, privateRef, { auth: user });
      const anonymous = krd.docker(['pull', privateRef]);
      assert.equal(anonymous.code, 1);
      assert.match(anonymous.stderr, /^Error response from daemon: .*(denied|authentication)/m);
      const wrong = krd.docker(['login', '-u', 'alice', '--password-stdin', locked.host], { input: 'wrong\n' });
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /401 Unauthorized/);
      const login = krd.docker(['login', '-u', 'alice', '--password-stdin', locked.host], { input: 's3cret\n' });
      assert.equal(login.code, 0, login.stderr);
      assert.match(login.stdout, /Login Succeeded/);
      const pulled = krd.docker(['pull', privateRef]);
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.match(pulled.stdout, /^Status: Downloaded newer image for /m);
      assert.equal(krd.docker(['rmi', privateRef]).code, 0);
    } finally {
      await locked.stop();
    }
  });

  test('docker images, tag, inspect and history', () => {
    const list = krd.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout.trim(), `${registry.host}/kit/app:v1 ${imageId.slice(7, 19)}`);
    assert.equal(krd.docker(['tag', ref, 'mine/app:x']).code, 0);
    const inspect = krd.docker(['image', 'inspect', '--format', '{{.Id}} {{.Os}}/{{.Architecture}} {{json .RepoTags}} {{len .RootFS.Layers}} {{.Config.WorkingDir}}', 'mine/app:x']);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal(inspect.stdout.trim(), `${imageId} linux/amd64 ["${ref}","mine/app:x"] 3 /home/user`);
    const filtered = krd.docker(['images', '--filter', 'reference=mine/*', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.equal(filtered.stdout.trim(), 'mine/app:x');
    const history = krd.docker(['history', '--format', '{{.ID}} {{.CreatedBy}}', 'mine/app:x']);
    assert.equal(history.code, 0, history.stderr);
    const lines = history.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.equal(lines[0], `${imageId.slice(7, 19)} test/kit/build-image.ts`);
    assert.equal(lines[2], '<missing> test/kit/build-image.ts');
  });

  test('docker save | rmi | load keeps the image ID', () => {
    const tar = join(work, 'x.tar');
    const save = krd.docker(['save', '-o', tar, 'mine/app:x']);
    assert.equal(save.code, 0, save.stderr);
    const rmi = krd.docker(['rmi', 'mine/app:x', ref]);
    assert.equal(rmi.code, 0, rmi.stderr);
    assert.match(rmi.stdout, new RegExp(`^Deleted: ${imageId}$`, 'm'));
    assert.equal(krd.docker(['images', '-q']).stdout.trim(), '');
    const load = krd.docker(['load', '-i', tar]);
    assert.equal(load.code, 0, load.stderr);
    assert.equal(load.stdout.trim(), 'Loaded image: mine/app:x');
    assert.equal(krd.docker(['image', 'inspect', '--format', '{{.Id}}', 'mine/app:x']).stdout.trim(), imageId);
  });

  test("errors read like docker's", () => {
    const rmi = krd.docker(['rmi', 'nope']);
    assert.notEqual(rmi.code, 0);
    assert.match(rmi.stderr, /^Error response from daemon: No such image: nope:latest$/m);
    const pull = krd.docker(['pull', `${registry.host}/nope`]);
    assert.equal(pull.code, 1);
    assert.match(pull.stderr, new RegExp(`^Error response from daemon: manifest for ${registry.host}/nope:latest not found: manifest unknown`, 'm'));
  });

  test('a bali file loads with docker load: a warning unless its signer is trusted; damage is refused', async () => {
    const bali = join(work, 'app.tar.gz');
    await packImage(built.image, bali, keyFromSecretString(SECRET));
    const load = krd.docker(['load', '-i', bali]);
    assert.equal(load.code, 0, load.stderr);
    assert.match(load.stdout, new RegExp(`^Warning: the bali file is signed by ${IDENTITY}, which is not a trusted identity`, 'm'));
    const id = /^Loaded image ID: (sha256:[a-f0-9]{64})$/m.exec(load.stdout)?.[1];
    assert.ok(id, load.stdout);
    const inspect = krd.docker(['image', 'inspect', '--format', '{{len .RootFS.Layers}} {{.Config.WorkingDir}} {{json .Config.Entrypoint}}', id]);
    assert.equal(inspect.stdout.trim(), '1 /home/user ["/bin/sh","-c"]');
    const imported = krd.docker(['import', bali, 'bali/app:1']);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(krd.docker(['image', 'inspect', '--format', '{{.Id}}', 'bali/app:1']).stdout.trim(), id);

    const bytes = await fsp.readFile(bali);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    const damaged = join(work, 'damaged.tar.gz');
    await fsp.writeFile(damaged, bytes);
    const bad = krd.docker(['load', '-i', damaged]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /corrupt|bad signature|gzip/);
  });

  test('kill -9, then a restart on the same socket and data root answers within seconds with the images', async () => {
    const before = krd.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']).stdout;
    await krd.kill9();
    await fsp.access(krd.socket); // the stale socket is still there
    assert.equal(await pingUnix(krd.socket), 0);
    const t0 = Date.now();
    const again = await startKrd({ socket: krd.socket, dataRoot: krd.dataRoot, args: ['--trusted-identity', IDENTITY] });
    const took = Date.now() - t0;
    // node_modules/.bin/krd execs: the process we started is krd itself. (Its line may reach
    // the test's pipe after the socket answers, so it is waited for.)
    for (let i = 0; i < 100 && !/\(pid \d+\)/.test(again.log()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(again.log(), new RegExp(`\\(pid ${again.child.pid}\\)`));
    const old = krd;
    krd = again;
    await old.stop();
    // "within seconds", with room for a busy machine (make test runs VM tests beside this one)
    assert.ok(took < 10_000, `restart took ${took} ms`);
    assert.equal(krd.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']).stdout, before);
    // A second krd on the same live socket refuses to start.
    const clash = spawnSync(KRD_BIN, ['-H', `unix://${krd.socket}`, '--data-root', join(work, 'other')], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(clash.status, 1);
    assert.match(clash.stderr, /another daemon is listening/);
    // …and so does a second krd on the same data root.
    const shared = spawnSync(KRD_BIN, ['-H', `unix://${join(work, 'other.sock')}`, '--data-root', krd.dataRoot], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(shared.status, 1);
    assert.match(shared.stderr, /is in use by krd/);
    // Now trusted: no warning.
    const load = krd.docker(['load', '-i', join(work, 'app.tar.gz')]);
    assert.match(load.stdout, new RegExp(`^Verified bali file signed by ${IDENTITY}$`, 'm'));
    assert.doesNotMatch(load.stdout, /Warning/);
  });

  test('TCP needs mutual TLS: krd certs, docker --tlsverify works, no client cert is refused', async () => {
    const certs = join(work, 'certs');
    const made = spawnSync(KRD_BIN, ['certs', certs], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const port = await freePort();
    const plain = spawnSync(KRD_BIN, ['-H', `tcp://127.0.0.1:${port}`, '--data-root', join(work, 'tcp-plain')], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(plain.status, 1);
    assert.match(plain.stderr, /refusing to listen on TCP without mutual TLS/);
    const tcp = await startKrd({
      noSocket: true,
      args: ['-H', `tcp://127.0.0.1:${port}`, '--tlsverify', '--tlscacert', join(certs, 'ca.pem'), '--tlscert', join(certs, 'server-cert.pem'), '--tlskey', join(certs, 'server-key.pem')],
    });
    try {
      const host = `tcp://127.0.0.1:${port}`;
      const ok = tcp.docker(['--tlsverify', '--tlscacert', join(certs, 'ca.pem'), '--tlscert', join(certs, 'cert.pem'), '--tlskey', join(certs, 'key.pem'), '-H', host, 'version', '--format', '{{.Server.Version}}']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), '0.1.0-kraud');
      const viaEnv = tcp.docker(['version', '--format', '{{.Server.APIVersion}}'], { env: { DOCKER_HOST: host, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs } });
      assert.equal(viaEnv.stdout.trim(), '1.50', viaEnv.stderr);
      const noCert = tcp.docker(['--tlsverify', '--tlscacert', join(certs, 'ca.pem'), '-H', host, 'version', '--format', '{{.Server.Version}}']);
      assert.notEqual(noCert.code, 0);
      assert.doesNotMatch(noCert.stdout, /kraud/);
    } finally {
      await tcp.stop();
    }
  });
});
