// cradle end to end: real qemu microVMs (KVM when usable, else TCG — printed), the real guest
// assets, images from a docker archive and a signed bali file. The VM tests run concurrently:
// under TCG a boot takes seconds, not milliseconds.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildImage, busyboxRoot, type EntrySpec } from './kit/build-image.ts';
import { keyFromSecretString } from '../src/bali/keys.ts';
import { encodeKeyString } from '../src/bali/key-string.ts';
import { packImage } from '../src/bali/pack.ts';
import { push } from '../src/image/registry/push.ts';
import type { Image } from '../src/image/types.ts';
import { startRegistry } from './kit/registry.ts';

const repo = path.resolve(import.meta.dirname, '..');
const cradle = path.join(repo, 'node_modules', '.bin', 'cradle');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kraud-cradle-'));
const env = { PATH: '/usr/bin:/bin', HOME: work, KRAUD_CRADLE_CACHE: path.join(work, 'cache'), ...(process.env.KRAUD_ACCEL ? { KRAUD_ACCEL: process.env.KRAUD_ACCEL } : {}) };
const key = keyFromSecretString(encodeKeyString('secret', new Uint8Array(randomBytes(32))));
const archive = path.join(work, 'img', 'image.docker.tar');
const baliFile = path.join(work, 'image.tar.gz');
const tampered = path.join(work, 'tampered.tar.gz');
let image: Image;

function run(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(cradle, args, { env: { ...env, ...extraEnv } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

/** The pid of a qemu whose command line names dir (0: none). */
function qemuOf(dir: string): number {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0].endsWith('qemu-system-x86_64') && argv.some((a) => a.includes(`${dir}/`))) return Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}

/** The accelerator line of `cradle run --timings`, printed so the test log says what was used. */
function accelOf(err: string): string {
  const m = /^accel: (kvm|tcg)$/m.exec(err);
  assert.ok(m, `no accel line in: ${err}`);
  console.log(`# cradle accelerator: ${m[1]}`);
  return m[1];
}

before(async () => {
  const entries: EntrySpec[] = [
    ...busyboxRoot(['sh', 'echo', 'cat', 'nc', 'httpd', 'wget', 'sleep', 'id', 'hostname', 'mkdir']),
    { type: 'dir', path: 'www/' },
    { type: 'file', path: 'www/index.html', content: 'served over the pod localhost\n' },
    { type: 'dir', path: 'tmp/', mode: 0o1777 },
  ];
  const config = { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hello from the pod; id -u; exit 7'], Env: ['PATH=/bin'], User: 'user' };
  const built = await buildImage(path.join(work, 'img'), [{ entries }], { config });
  image = built.image;
  await packImage(built.image, baliFile, key);
  const bytes = fs.readFileSync(baliFile);
  bytes[bytes.length >> 1] ^= 0x20;
  fs.writeFileSync(tampered, bytes);
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

describe('cradle', { concurrency: true }, () => {
  test('summon + run of a busybox docker archive: its output on stdout, its exit code, its USER; restart policy in the guest', async () => {
    const dir = path.join(work, 'vm-one');
    const s = await run(['summon', dir, archive, '--mem', '128m', '--restart', 'on-failure:2']);
    assert.equal(s.code, 0, s.err);
    const r = await run(['run', dir, '--timings']);
    accelOf(r.err);
    assert.equal(r.out, 'hello from the pod\n1000\n'.repeat(3), r.err);
    assert.equal(r.code, 7, r.err);
    for (const p of ['qemu spawned', 'kernel entered', 'init started', 'disks ready', "container exec'd", 'first output', 'total']) assert.match(r.err, new RegExp(`^${p}: \\d+ ms$`, 'm'));
  });

  test('a boot that stalls before init (qemu frozen: idle, as a stalled guest is) is ended after 30 s idle and booted again', async () => {
    const dir = path.join(work, 'vm-stall');
    const s = await run(['summon', dir, archive, '--mem', '128m', '--', 'echo after a stall']);
    assert.equal(s.code, 0, s.err);
    const running = run(['run', dir, '--timings']);
    // the first qemu of this pod, frozen at once (long before its guest could reach init)
    let frozen = 0;
    for (let i = 0; i < 1500 && !frozen; i++) {
      frozen = qemuOf(dir);
      if (!frozen) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(frozen, 'no qemu for the pod appeared');
    process.kill(frozen, 'SIGSTOP');
    const r = await running;
    accelOf(r.err);
    assert.match(r.err, /^cradle: cradle run: the guest stalled in its boot \(qemu idle for \d+ s before init; accel (kvm|tcg)\): booting it again \(attempt 2 of 3\)$/m);
    assert.equal(r.out, 'after a stall\n', r.err);
    assert.equal(r.code, 0, r.err);
  });

  test('a pod of two containers from a signed bali file talks over localhost; -e and -v (virtiofs) apply', async () => {
    const dir = path.join(work, 'vm-two');
    const pod = path.join(work, 'pod.json');
    fs.writeFileSync(
      pod,
      JSON.stringify({
        containers: [
          { name: 'client', cmd: ['cat /data/in.txt; for i in $(seq 1 100); do wget -q -O /data/got.txt http://127.0.0.1:8080/index.html && cat /data/got.txt && echo "$GREETING" && exit 0; sleep 0.1; done; exit 1'] },
          { name: 'server', user: 'root', cmd: ['exec httpd -f -p 127.0.0.1:8080 -h /www'] },
        ],
      }),
    );
    const shared = path.join(work, 'shared');
    fs.mkdirSync(shared, { mode: 0o777 });
    fs.chmodSync(shared, 0o777);
    fs.writeFileSync(path.join(shared, 'in.txt'), 'from the host\n');
    const s = await run(['summon', dir, baliFile, '--identity', key.identity, '--pod', pod, '-e', 'GREETING=both sides agree', '-v', `${shared}:/data`]);
    assert.equal(s.code, 0, s.err);
    const r = await run(['run', dir, '--timings']);
    accelOf(r.err);
    assert.equal(r.out, 'from the host\nserved over the pod localhost\nboth sides agree\n', r.err);
    assert.equal(r.code, 0, r.err);
    assert.equal(fs.readFileSync(path.join(shared, 'got.txt'), 'utf8'), 'served over the pod localhost\n');
  });

  test('-p publishes a port on 127.0.0.1; Ctrl-C stops the pod gracefully (SIGTERM reaches the container) and its exit code is returned', async () => {
    const dir = path.join(work, 'vm-stop');
    const port = 20000 + Math.floor(Math.random() * 20000);
    const script = 'trap "echo got-term; exit 42" TERM; mkdir -p /tmp/w; echo hi-over-http > /tmp/w/i.html; httpd -p 8080 -h /tmp/w; echo ready; while :; do sleep 0.1; done';
    const s = await run(['summon', dir, archive, '-p', `${port}:8080`, '--', script]);
    assert.equal(s.code, 0, s.err);
    const child = spawn(cradle, ['run', dir], { env });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready\n')) resolve();
      });
      void exit.then(() => reject(new Error(`cradle run ended early: ${err}`)));
    });
    const res = await fetch(`http://127.0.0.1:${port}/i.html`);
    assert.equal(await res.text(), 'hi-over-http\n');
    child.kill('SIGINT');
    assert.equal(await exit, 42, err);
    assert.equal(out, 'ready\ngot-term\n');
  });

  test('bad input: one line, non-zero exit, no VM directory left behind', async () => {
    const cases: [string[], number, RegExp][] = [
      [['summon', path.join(work, 'bad1'), path.join(work, 'missing.tar')], 1, /missing\.tar: no such file/],
      [['summon', path.join(work, 'bad2'), archive, '--bogus'], 2, /Unknown option '--bogus'/],
      [['summon', path.join(work, 'bad3'), tampered, '--identity', key.identity], 1, /bad signature|corrupt/],
      [['summon', path.join(work, 'bad4'), baliFile], 1, /no trusted identity|untrusted/],
      [['summon', path.join(work, 'bad5'), archive, '--mem', '12x'], 1, /invalid memory size/],
      [['summon', path.join(work, 'bad8'), archive, '--restart', 'sometimes'], 1, /invalid restart policy/],
      [['run', path.join(work, 'bad6')], 1, /not a cradle VM directory/],
      [['summon', path.join(work, 'bad7'), archive, '-v', `${path.join(work, 'nope')}:/data`], 1, /does not exist/],
    ];
    await Promise.all(
      cases.map(async ([args, code, msg]) => {
        const r = await run(args);
        assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`);
        assert.match(r.err, msg);
        assert.equal(r.err.trim().split('\n')[0].startsWith('cradle: '), true, r.err);
        if (code === 1) assert.equal(r.err.trim().split('\n').length, 1, r.err);
        assert.equal(fs.existsSync(args[1]), false, `${args[1]} was left behind`);
      }),
    );
  });

  test('summon from a registry reference: the image disk is named by the manifest digest, cached, reproducible', async () => {
    const reg = await startRegistry();
    try {
      const ref = `${reg.host}/kraud/cradle-test:1`;
      await push(image, ref);
      const dirs = [path.join(work, 'vm-reg-1'), path.join(work, 'vm-reg-2')];
      for (const dir of dirs) {
        const s = await run(['summon', dir, ref, '--cpus', '2', '--mem', '1g']);
        assert.equal(s.code, 0, s.err);
      }
      const pods = dirs.map((d) => JSON.parse(fs.readFileSync(path.join(d, 'pod.json'), 'utf8')));
      assert.equal(pods[0].spec.images[0].digest, image.manifestDigest);
      assert.deepEqual(pods[0].spec.resources, { memoryMiB: 1024, cpus: 2 });
      assert.equal(pods[0].disks[1].file, pods[1].disks[1].file, 'the second summon reuses the cached disk');
      assert.notEqual(pods[0].spec.secret, pods[1].spec.secret, 'every pod gets its own secret');
      // a fresh cache makes the same disk again, byte for byte
      const other = path.join(work, 'cache-2');
      const s = await run(['summon', path.join(work, 'vm-reg-3'), ref], { KRAUD_CRADLE_CACHE: other });
      assert.equal(s.code, 0, s.err);
      const again = path.join(other, 'images', path.basename(pods[0].disks[1].file));
      assert.ok(fs.readFileSync(again).equals(fs.readFileSync(pods[0].disks[1].file)), 'image disks are reproducible');
    } finally {
      await reg.stop();
    }
  });

  test('guest assets are reproducible: two builds give the same bytes', async () => {
    const dirs = [path.join(work, 'assets-a'), path.join(work, 'assets-b')];
    await Promise.all(
      dirs.map(
        (d) =>
          new Promise<void>((resolve, reject) => {
            const c = spawn('sh', [path.join(repo, 'scripts/guest-assets.sh'), d], { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] });
            c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`guest-assets.sh exited ${code}`))));
          }),
      ),
    );
    const [a, b] = dirs.map((d) => JSON.parse(fs.readFileSync(path.join(d, 'assets.json'), 'utf8')) as Record<string, string>);
    assert.match(a['initramfs.cpio'], /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(a, b);
    const shipped = JSON.parse(fs.readFileSync(path.join(repo, '.cache/cradle/assets.json'), 'utf8')) as Record<string, string>;
    assert.deepEqual(a, shipped, 'make guest is out of date, or the build is not reproducible');
  });
});
