// krd --runtime vm with the real docker 28 CLI: a pod running a container; docker run, exec, cp
// both ways, logs -f, binds and volumes, stop and rm through krd, which reaches the pod's vdocker with the pod secret.
// Each pod is a real qemu microVM (KVM where usable, else TCG — printed; ≈ 17 s to a running pod
// under TCG, most of it node starting vdocker in the guest). KRAUD_TEST_VM=process runs the pods as
// host processes instead (KRAUD_VM_PODS=process: the same vdocker over the ns runtime, no VM) for
// quick iteration on the host side. One pod for most of the file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { chooseAccel } from '../src/vm/qemu.ts';
import { startKrdWithImage, stopKrdFixture, type KrdFixture } from './kit/krd-image.ts';

describe('krd --runtime vm with the docker CLI', () => {
  let f: KrdFixture;
  const qemu = process.env.KRAUD_TEST_VM !== 'process';
  const accel = chooseAccel();

  before(async () => {
    if (!qemu) process.env.KRAUD_VM_PODS = 'process'; // krd inherits it
    console.log(qemu ? `# pods: qemu microVMs, accelerator: ${accel}` : '# pods: host processes (KRAUD_TEST_VM=process), no VM');
    f = await startKrdWithImage('kraud-krd-vm-', { Cmd: ['sh'] }, [], ['--runtime', 'vm']);
    const t0 = Date.now();
    const run = f.krd.docker(['run', '-d', '--name', 'v1', f.img, 'sh', '-c', 'echo started; i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done'], { timeout: 600_000 });
    assert.equal(run.code, 0, `${run.stderr}\n${f.krd.log()}`);
    console.log(`# docker run -d of a pod (${qemu ? `qemu, accel ${accel}` : 'host process'}): ${Date.now() - t0} ms`);
  });

  after(() => stopKrdFixture(f ?? {}));

  test('docker info names the vm runtime; krd said why at start', () => {
    const info = f.krd.docker(['info', '--format', '{{.DefaultRuntime}}']);
    assert.equal(info.stdout.trim(), 'vm', info.stderr);
    assert.match(f.krd.log(), qemu ? new RegExp(`runtime vm \\(asked for, accel ${accel}\\)`) : /runtime vm \(asked for, pods as host processes/);
  });

  test('docker exec: output and exit code from inside the pod', () => {
    const r = f.krd.docker(['exec', 'v1', 'sh', '-c', 'echo hi from $(hostname); exit 3'], { timeout: 120_000 });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^hi from \S+\n$/);
    const i = f.krd.docker(['exec', '-i', 'v1', 'cat'], { input: 'through the vm\n', timeout: 120_000 });
    assert.equal(i.stdout, 'through the vm\n', i.stderr);
  });

  test('docker cp into the pod and back out', async () => {
    const local = join(f.work, 'cp-in.txt');
    await fsp.writeFile(local, 'copied in\n');
    const cpIn = f.krd.docker(['cp', local, 'v1:/tmp/in.txt'], { timeout: 120_000 });
    assert.equal(cpIn.code, 0, cpIn.stderr);
    assert.equal(f.krd.docker(['exec', 'v1', 'cat', '/tmp/in.txt'], { timeout: 120_000 }).stdout, 'copied in\n');
    const out = join(f.work, 'cp-out');
    await fsp.mkdir(out);
    const cpOut = f.krd.docker(['cp', 'v1:/tmp/in.txt', join(out, 'back.txt')], { timeout: 120_000 });
    assert.equal(cpOut.code, 0, cpOut.stderr);
    assert.equal(await fsp.readFile(join(out, 'back.txt'), 'utf8'), 'copied in\n');
  });

  test('docker run --rm -i --network none in a pod of its own: stdin in, output and exit code out (attach); lo is its only interface', () => {
    const r = f.krd.docker(['run', '--rm', '-i', '--network', 'none', f.img, 'sh', '-c', 'read x; echo "got $x"; cat /proc/net/dev; echo err >&2; exit 5'], { input: 'piped\n', timeout: 600_000 });
    const [first, ...dev] = r.stdout.split('\n');
    assert.equal(first, 'got piped', r.stderr);
    // /proc/net/dev: two header lines, then one "name: counters" line per interface
    assert.deepEqual(dev.slice(2).filter(Boolean).map((l) => l.split(':')[0].trim()), ['lo']);
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.code, 5);
  });

  test('docker run -v DIR:/data:ro, -v FILE:/etc/app.conf:ro, --mount type=bind of a directory and of a file, a named volume: host files in the pod (virtiofs)', async () => {
    const ro = join(f.work, 'bind-ro');
    const rw = join(f.work, 'bind-rw');
    await fsp.mkdir(ro);
    await fsp.mkdir(rw);
    await fsp.writeFile(join(ro, 'f'), 'from host\n');
    await fsp.writeFile(join(rw, 'app.conf'), 'conf\n');
    await fsp.writeFile(join(rw, 'rw.conf'), '');
    const script = 'cat /data/f; echo no > /data/g || echo read-only; echo made > /out/h; echo kept > /vol/x; cat /vol/x; cat /etc/app.conf; echo no > /etc/app.conf || echo ro-file; echo file-made > /etc/rw.conf';
    const binds = ['-v', `${ro}:/data:ro`, '--mount', `type=bind,source=${rw},target=/out`, '-v', 'vmvol:/vol', '-v', `${join(rw, 'app.conf')}:/etc/app.conf:ro`, '--mount', `type=bind,source=${join(rw, 'rw.conf')},target=/etc/rw.conf`];
    const r = f.krd.docker(['run', '--rm', ...binds, f.img, 'sh', '-c', script], { timeout: 600_000 });
    assert.equal(r.stdout, 'from host\nread-only\nkept\nconf\nro-file\n', r.stderr);
    assert.deepEqual(await fsp.readdir(ro), ['f']);
    assert.equal(await fsp.readFile(join(rw, 'h'), 'utf8'), 'made\n');
    assert.equal(await fsp.readFile(join(rw, 'app.conf'), 'utf8'), 'conf\n');
    assert.equal(await fsp.readFile(join(rw, 'rw.conf'), 'utf8'), 'file-made\n');
    const vol = f.krd.docker(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'vmvol']).stdout.trim();
    assert.equal(await fsp.readFile(join(vol, 'x'), 'utf8'), 'kept\n');
  });

  test('docker logs -f follows until the container stops; then rm', async () => {
    const follow = spawn('docker', ['logs', '-f', 'v1'], { env: f.krd.env });
    let seen = '';
    follow.stdout.on('data', (d) => (seen += d));
    const ended = new Promise<number | null>((r) => follow.once('close', r));
    for (let i = 0; i < 600 && !/tick 2\n/.test(seen); i++) await new Promise((r) => setTimeout(r, 200));
    assert.match(seen, /^started\ntick 0\ntick 1\ntick 2\n/);
    const stop = f.krd.docker(['stop', '-t', '1', 'v1'], { timeout: 120_000 });
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await ended, 0);
    assert.match(f.krd.docker(['inspect', '-f', '{{.State.Status}}', 'v1']).stdout, /^exited\n$/);
    assert.equal(f.krd.docker(['rm', 'v1'], { timeout: 60_000 }).code, 0);
    assert.equal(f.krd.docker(['ps', '-aq']).stdout, '');
  });
});
