// vdocker on the host over the ns runtime, driven by the real docker 28 CLI: the CLI sends the
// pod secret because its config.json sets "HttpHeaders": {"Authorization": "Bearer …"} (that is
// how a host-side client carries it). Forged requests (no secret, a wrong one) are refused with 401
// and change nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NsRuntime } from '../src/runtime/ns/ns-runtime.ts';
import { startVdocker, type Vdocker } from '../src/guest/vdocker/server.ts';
import { buildTestImage } from './kit/build-image.ts';
import { runDocker } from './kit/docker-cli.ts';

const ID1 = 'a'.repeat(64);

const ID2 = 'b'.repeat(64);

// one test after the other: they share the pod's two containers and change their state
describe('vdocker on the host (ns runtime) with the docker CLI', () => {
  let work: string;
  let rt: NsRuntime;
  let vd: Vdocker;
  const secret = randomBytes(24).toString('hex');
  let env: NodeJS.ProcessEnv;

  // asynchronous: vdocker runs in this very process
  const docker = (args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}) => runDocker(args, { ...env, ...o.env }, o.input);

  /** A raw request: method, path, headers; the status and body. */
  const request = (method: string, path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: vd.port, method, path, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  before(async () => {
    work = await fsp.mkdtemp(join(tmpdir(), 'kraud-vdocker-'));
    const built = await buildTestImage(join(work, 'image'));
    rt = new NsRuntime(join(work, 'runtime'));
    // c1: started before vdocker, as the guest's init does; c2: created, held until the host starts it
    const c1 = await rt.create({ id: ID1, rootfs: { image: built.image }, args: ['/bin/sh', '-c', 'echo hello; echo oops >&2; exec busybox sleep 300'], env: ['BASE=1'] });
    await c1.start();
    await rt.create({ id: ID2, rootfs: { image: built.image }, args: ['/bin/sh', '-c', 'read x; echo "got $x"; exit 3'], openStdin: true });
    vd = await startVdocker({
      runtime: rt,
      secret,
      host: '127.0.0.1',
      port: 0,
      containers: [
        { id: ID1, name: 'web', image: 'kit/box:v1', config: { Cmd: ['/bin/sh', '-c', 'echo hello; echo oops >&2; exec busybox sleep 300'], Env: ['BASE=1'] } },
        { id: ID2, name: 'job', image: 'kit/box:v1', config: { Cmd: ['/bin/sh'], OpenStdin: true, StdinOnce: true } },
      ],
    });
    const cfg = join(work, 'docker-config');
    await fsp.mkdir(cfg);
    await fsp.writeFile(join(cfg, 'config.json'), JSON.stringify({ HttpHeaders: { Authorization: `Bearer ${secret}` } }));
    env = { ...process.env, DOCKER_HOST: `tcp://127.0.0.1:${vd.port}`, DOCKER_CONFIG: cfg };
    delete env.DOCKER_TLS_VERIFY;
    delete env.DOCKER_CERT_PATH;
    delete env.DOCKER_CONTEXT;
  });

  after(async () => {
    await vd?.close();
    for (const id of (await rt?.list()) ?? []) await (await rt.reattach(id)).delete({ force: true }).catch(() => undefined);
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  test('forged requests: no secret or a wrong one → 401, and nothing happens', async () => {
    const forged: Record<string, string>[] = [{}, { Authorization: 'Bearer wrong-secret-wrong-secret' }, { Authorization: `Bearer ${secret}x` }, { Authorization: secret }];
    for (const headers of forged) {
      assert.equal((await request('GET', '/containers/json', headers)).status, 401);
      assert.equal((await request('POST', '/v1.45/containers/web/kill?signal=KILL', headers)).status, 401);
      assert.equal((await request('GET', '/_ping', headers)).status, 401);
    }
    // a hijack attempt is refused before anything reaches the container
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect(vd.port, '127.0.0.1', () => s.write('POST /containers/job/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nforged\n'));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('close', () => resolve(got));
    });
    assert.match(answer, /^HTTP\/1.1 401/);
    assert.equal((await (await rt.reattach(ID1)).state()).status, 'running');
    const without = await runDocker(['ps'], { ...env, DOCKER_CONFIG: join(work, 'empty-config') });
    assert.notEqual(without.code, 0);
    // with the secret the same request works
    assert.equal((await request('GET', '/containers/json', { Authorization: `Bearer ${secret}` })).status, 200);
  });

  test('ps and inspect show the real state', async () => {
    const ps = await docker(['ps', '--format', '{{.Names}} {{.Status}}']);
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, /^web Up /m);
    assert.doesNotMatch(ps.stdout, /^job/m);
    const all = await docker(['ps', '-a', '--format', '{{.Names}} {{.Status}}']);
    assert.match(all.stdout, /^job Created$/m);
    const insp = await docker(['inspect', '-f', '{{.State.Status}} {{.State.Running}} {{.State.Pid}}', 'web']);
    assert.equal(insp.code, 0, insp.stderr);
    assert.match(insp.stdout, /^running true [1-9]\d*\n$/);
  });

  test('logs: both streams, tail, timestamps', async () => {
    const r = await docker(['logs', 'web']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello\n');
    assert.equal(r.stderr, 'oops\n');
    const t = await docker(['logs', '--tail', '1', '-t', 'web']);
    assert.match(t.stdout + t.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (hello|oops)\n$/);
  });

  test('exec: output, stdin, exit codes, exec inspect', async () => {
    const r = await docker(['exec', 'web', 'sh', '-c', 'echo $BASE; echo e >&2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '1\n');
    assert.equal(r.stderr, 'e\n');
    assert.equal((await docker(['exec', 'web', 'sh', '-c', 'exit 42'])).code, 42);
    assert.equal((await docker(['exec', 'web', '/no/such'])).code, 127);
    assert.equal((await docker(['exec', '-i', 'web', 'cat'], { input: 'piped\n' })).stdout, 'piped\n');
    assert.equal((await docker(['exec', '-t', 'web', 'echo', 'tty'])).stdout, 'tty\r\n');
  });

  test('cp in and out, archive HEAD', async () => {
    const local = join(work, 'cp');
    await fsp.mkdir(join(local, 'dir', 'sub'), { recursive: true });
    await fsp.writeFile(join(local, 'dir', 'sub', 'f.txt'), 'file content\n');
    const cpIn = await docker(['cp', join(local, 'dir'), 'web:/tmp/']);
    assert.equal(cpIn.code, 0, cpIn.stderr);
    assert.equal((await docker(['exec', 'web', 'cat', '/tmp/dir/sub/f.txt'])).stdout, 'file content\n');
    const out = join(work, 'cp-out');
    await fsp.mkdir(out);
    const cpOut = await docker(['cp', 'web:/tmp/dir', out]);
    assert.equal(cpOut.code, 0, cpOut.stderr);
    assert.equal(await fsp.readFile(join(out, 'dir', 'sub', 'f.txt'), 'utf8'), 'file content\n');
    const toStdout = await docker(['cp', 'web:/etc/passwd', '-']);
    assert.equal(toStdout.code, 0, toStdout.stderr);
    assert.match(toStdout.stdout, /^passwd/);
    const missing = await docker(['cp', 'web:/no/such', out]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Could not find the file \/no\/such/);
  });

  test('top and stats', async () => {
    const top = await docker(['top', 'web']);
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD/);
    assert.match(top.stdout, /busybox sleep 300/);
    const stats = await docker(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'web']);
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, /^web [1-9]/);
  });

  test('start -a -i of a held container: stdin in, output and exit code out', async () => {
    const r = await docker(['start', '-a', '-i', 'job'], { input: 'there\n' });
    assert.equal(r.stdout, 'got there\n', r.stderr);
    assert.equal(r.code, 3);
    assert.equal((await docker(['wait', 'job'])).stdout, '3\n');
    assert.match((await docker(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'job'])).stdout, /^exited 3\n$/);
    // docker cp works on a stopped container too (its overlay is mounted for the copy)
    const cp = await docker(['cp', 'job:/etc/group', '-']);
    assert.equal(cp.code, 0, cp.stderr);
    assert.match(cp.stdout, /^group/);
  });
});

describe('vdocker kill and create', () => {
  test('any signal reaches the container; the exit is reported; the host creates a container', async () => {
    const work = await fsp.mkdtemp(join(tmpdir(), 'kraud-vdocker-kill-'));
    const built = await buildTestImage(join(work, 'image'));
    const rt = new NsRuntime(join(work, 'runtime'));
    const c = await rt.create({ id: ID1, rootfs: { image: built.image }, args: ['/bin/sh', '-c', 'trap "exit 12" USR1; echo ready; while true; do busybox sleep 0.1; done'] });
    await c.start();
    const secret = randomBytes(24).toString('hex');
    const vd = await startVdocker({ runtime: rt, secret, host: '127.0.0.1', port: 0, images: [await rt.cache.get(built.image)], containers: [{ id: ID1, name: 'k', image: 'box', config: { Cmd: ['sh'] } }] });
    try {
      const auth = { Authorization: `Bearer ${secret}` };
      const call = (method: string, path: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: vd.port, method, path, headers: auth }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          });
          req.on('error', reject);
          req.end();
        });
      for (let i = 0; i < 100 && !(await call('GET', '/containers/k/logs?stdout=1')).body.includes('ready'); i++) await new Promise((r) => setTimeout(r, 20));
      const waiting = call('POST', '/v1.50/containers/k/wait');
      assert.equal((await call('POST', '/v1.50/containers/k/kill?signal=SIGUSR1')).status, 204);
      assert.deepEqual(JSON.parse((await waiting).body), { Error: null, StatusCode: 12 });
      const inspect = JSON.parse((await call('GET', '/containers/k/json')).body);
      assert.equal(inspect.State.ExitCode, 12);
      assert.equal((await call('POST', '/containers/create')).status, 404);
      // the host adds a container: held until started, then runs on the pod's image
      const post = (path: string, body: unknown) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: vd.port, method: 'POST', path, headers: { ...auth, 'Content-Type': 'application/json' } }, (res) => {
            let text = '';
            res.on('data', (d) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          });
          req.on('error', reject);
          req.end(JSON.stringify(body));
        });
      assert.equal((await post('/kraud/containers', { id: ID2, image: 0, args: [] })).status, 400);
      assert.equal((await post('/kraud/containers', { id: ID2, image: 7, args: ['true'] })).status, 400);
      assert.equal((await rt.list()).includes(ID2), false);
      const made = await post('/kraud/containers', { id: ID2, name: 'made', image: 0, args: ['/bin/sh', '-c', 'echo made by host; exit 4'], network: 'none' });
      assert.equal(made.status, 201, made.body);
      assert.equal(JSON.parse((await call('GET', '/containers/made/json')).body).State.Status, 'created');
      const waited = call('POST', '/containers/made/wait?condition=next-exit');
      assert.equal((await call('POST', '/containers/made/start')).status, 204);
      assert.equal(JSON.parse((await waited).body).StatusCode, 4);
      assert.equal((await call('GET', '/containers/made/logs?stdout=1')).body.slice(8), 'made by host\n');
      assert.equal((await call('DELETE', '/containers/made')).status, 204);
      assert.equal((await rt.list()).includes(ID2), false);
    } finally {
      await vd.close();
      await (await rt.reattach(ID1)).delete({ force: true }).catch(() => undefined);
      await fsp.rm(work, { recursive: true, force: true });
    }
  });
});
