// VM pods on krd's networks, with the real docker 28 CLI: krd --runtime vm in a network namespace
// this test makes, next to a second one playing "the internet" (as test/krd-networks.test.ts).
// Three pod microVMs (KVM where usable, else TCG — printed), started in parallel: pa and pb on a
// user network, pc on the default bridge. Each guest's eth0 is a tap in the container's namespace
// wired to krd's veth (src/net/tap-redirect.ts), so the pods have the addresses krd's IPAM gave
// them, resolve each other through the embedded DNS, are published with -p, go out through
// MASQUERADE and stay isolated per network. docker network connect of a running pod hot-plugs a NIC
// into its VM (src/runtime/vm/pod-nics.ts); disconnect unplugs it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseAccel } from '../src/vm/qemu.ts';
import { buildImage, standardLayers } from './kit/build-image.ts';
import { startKrd, type TestKrd } from './kit/krd.ts';
import { createTestNetns, fakeInternet, INET_IP, type FakeInternet, type TestNetns } from './kit/netns.ts';

const IMG = 'kraud-test:vmnet';
const LONG = { timeout: 180_000 };

describe('krd --runtime vm: pods on krd networks (docker CLI, krd in its own network namespace)', () => {
  let work: string;
  let ns: TestNetns;
  let inet: FakeInternet | undefined;
  let krd: TestKrd;
  const ip: Record<string, string> = {};

  const ok = (args: string[], opts = LONG) => {
    const r = krd.docker(args, opts);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** docker run -d, asynchronously (the pods boot in parallel). */
  const runDetached = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn('nsenter', [`--net=/run/netns/${krd.netns}`, 'docker', 'run', '-d', ...args], { env: krd.env });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.once('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`docker run ${args.join(' ')}: ${err}\n${krd.log()}`))));
    });
  /** A shell line retried for a while (a server that just started, a name just registered). */
  const retry = (cmd: string) => `for i in $(seq 100); do ${cmd} && exit 0; sleep 0.2; done; exit 1`;

  before(async () => {
    work = await fsp.mkdtemp(join(tmpdir(), 'kraud-krd-vmnet-'));
    ns = createTestNetns();
    // krd's namespace reaches "the internet" through a veth; its default route points there
    inet = await fakeInternet(ns, work);
    const applets = ['sleep', 'seq', 'nslookup', 'wget', 'ip', 'httpd', 'timeout', 'ping', 'ls'];
    const layers = [...standardLayers(), { entries: applets.map((a) => ({ type: 'symlink' as const, path: `bin/${a}`, target: 'busybox' })) }];
    const built = await buildImage(join(work, 'image'), layers, { config: { Cmd: ['sh'] }, tag: 'vmnet' });
    krd = await startKrd({ netns: ns.name, socket: join(work, 'krd.sock'), dataRoot: join(work, 'data'), args: ['--runtime', 'vm'] });
    ok(['load', '-i', built.dockerArchive]);
    ok(['network', 'create', '--subnet', '10.77.0.0/24', 'n']);
    const accel = chooseAccel();
    console.log(`# pods: qemu microVMs, accelerator: ${accel}`);
    const t0 = Date.now();
    await Promise.all([
      runDetached(['--network', 'n', '--name', 'pa', '-p', '127.0.0.1:18080:80', IMG, 'sh', '-c', 'mkdir /www && echo hello from a > /www/index.html && exec httpd -f -p 80 -h /www']),
      runDetached(['--network', 'n', '--name', 'pb', IMG, 'sleep', '100000']),
      runDetached(['--name', 'pc', IMG, 'sleep', '100000']),
    ]);
    console.log(`# three pods up in parallel (accel ${accel}): ${Date.now() - t0} ms`);
    ip.a = ok(['inspect', '-f', '{{.NetworkSettings.Networks.n.IPAddress}}', 'pa']);
    ip.b = ok(['inspect', '-f', '{{.NetworkSettings.Networks.n.IPAddress}}', 'pb']);
    ip.c = ok(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'pc']);
  });

  after(async () => {
    if (krd) {
      for (const id of krd.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean)) krd.docker(['rm', '-f', id], LONG);
      krd.docker(['network', 'rm', 'n']);
      await krd.stop();
    }
    ns?.remove();
    inet?.remove();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  test('each guest has the address krd gave its container (docker inspect), the veth\'s MAC and the gateway route', () => {
    assert.match(ip.a, /^10\.77\.0\.\d+$/);
    assert.match(ip.c, /^172\.\d+\.\d+\.\d+$/);
    for (const [name, net] of [['a', 'n'], ['c', 'bridge']] as const) {
      const pod = `p${name}`;
      const mac = ok(['inspect', '-f', `{{.NetworkSettings.Networks.${net}.MacAddress}}`, pod]);
      const gw = ok(['inspect', '-f', `{{.NetworkSettings.Networks.${net}.Gateway}}`, pod]);
      const addr = ok(['exec', pod, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
      assert.match(addr, new RegExp(`inet ${ip[name].replaceAll('.', '\\.')}/\\d+ `), addr);
      assert.equal(ok(['exec', pod, 'cat', '/sys/class/net/eth0/address']), mac);
      assert.match(ok(['exec', pod, 'ip', 'route']), new RegExp(`^default via ${gw.replaceAll('.', '\\.')} dev eth0`, 'm'));
    }
  });

  test('pods on a user network reach each other by name (krd\'s embedded DNS on the gateway) and by address', () => {
    assert.match(ok(['exec', 'pb', 'cat', '/etc/resolv.conf']), /^nameserver 10\.77\.0\.1$/m);
    assert.match(ok(['exec', 'pb', 'cat', '/etc/hosts']), new RegExp(`^${ip.b.replaceAll('.', '\\.')}\\s`, 'm'));
    assert.match(ok(['exec', 'pb', 'nslookup', 'pa']), new RegExp(`Address:? +${ip.a.replaceAll('.', '\\.')}`));
    assert.equal(ok(['exec', 'pb', 'sh', '-c', retry('wget -q -O- http://pa/')]), 'hello from a');
    assert.equal(ok(['exec', 'pb', 'wget', '-q', '-O-', `http://${ip.a}/`]), 'hello from a');
  });

  test('-p publishes the pod\'s port on krd\'s namespace (its userspace proxy connects to the pod\'s address)', () => {
    assert.equal(ok(['port', 'pa']), '80/tcp -> 127.0.0.1:18080');
    const r = ns.run(['sh', '-c', retry('busybox wget -q -O- http://127.0.0.1:18080/')], { timeout: 60_000 });
    assert.equal(r.stdout.trim(), 'hello from a', r.stderr);
  });

  test('outbound: pods on a user network and on the default bridge reach "the internet" (MASQUERADE)', () => {
    for (const pod of ['pb', 'pc']) assert.equal(ok(['exec', pod, 'wget', '-q', '-O-', `http://${INET_IP}:8000/hello.txt`]), 'hello from the internet');
  });

  test('networks stay isolated: the default bridge\'s pod cannot reach a (whose server b reaches) and has no embedded DNS', () => {
    const r = krd.docker(['exec', 'pc', 'timeout', '5', 'wget', '-q', '-O-', `http://${ip.a}/`], LONG);
    assert.notEqual(r.code, 0, 'c reached a across networks');
    assert.notEqual(krd.docker(['exec', 'pc', 'nslookup', 'pa'], LONG).code, 0);
  });

  test('network connect of a running pod: a hot-plugged NIC with krd\'s address, a on the new network by name and address; disconnect takes it away', () => {
    const t0 = Date.now();
    ok(['network', 'connect', 'n', 'pc']);
    console.log(`# docker network connect of a running pod: ${Date.now() - t0} ms`);
    const cn = ok(['inspect', '-f', '{{.NetworkSettings.Networks.n.IPAddress}} {{.NetworkSettings.Networks.n.MacAddress}} {{.NetworkSettings.Networks.bridge.Gateway}}', 'pc']).split(' ');
    assert.match(ok(['exec', 'pc', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth1']), new RegExp(`inet ${cn[0].replaceAll('.', '\\.')}/24 `));
    assert.equal(ok(['exec', 'pc', 'cat', '/sys/class/net/eth1/address']), cn[1]);
    // the default route stays the first network's, as in docker
    assert.match(ok(['exec', 'pc', 'ip', 'route']), new RegExp(`^default via ${cn[2].replaceAll('.', '\\.')} dev eth0`, 'm'));
    assert.equal(ok(['exec', 'pc', 'sh', '-c', retry('wget -q -O- http://pa/')]), 'hello from a');
    assert.equal(ok(['exec', 'pc', 'wget', '-q', '-O-', `http://${ip.a}/`]), 'hello from a');
    ok(['exec', 'pc', 'ping', '-c', '1', '-W', '10', 'pa']);

    const t1 = Date.now();
    ok(['network', 'disconnect', 'n', 'pc']);
    console.log(`# docker network disconnect of a running pod: ${Date.now() - t1} ms`);
    assert.deepEqual(ok(['exec', 'pc', 'ls', '/sys/class/net']).split(/\s+/).sort(), ['eth0', 'kraud0', 'lo']);
    assert.notEqual(krd.docker(['exec', 'pc', 'timeout', '5', 'wget', '-q', '-O-', `http://${ip.a}/`], LONG).code, 0, 'c still reaches a');
    // nothing left in the container's namespace but its veth and the boot NIC's tap
    const id = ok(['inspect', '-f', '{{.Id}}', 'pc']);
    const links = ns.run(['nsenter', `--net=${join(work, 'data', 'network', 'containers', id, 'netns')}`, 'ip', '-o', 'link'], { timeout: 10_000 }).stdout;
    assert.deepEqual([...links.matchAll(/^\d+: ([^:@]+)/gm)].map((m) => m[1]).sort(), ['eth0', 'lo', 'tap0']);
  });

  test('network connect of a stopped pod: its VM takes the NIC at once, the container has it when it starts again', () => {
    ok(['stop', '-t', '0', 'pb']);
    ok(['network', 'connect', 'bridge', 'pb']);
    ok(['start', 'pb']);
    ok(['exec', 'pb', 'ping', '-c', '1', '-W', '10', ip.c]);
    ok(['network', 'disconnect', 'bridge', 'pb']);
    assert.equal(krd.docker(['exec', 'pb', 'ls', '/sys/class/net/eth1'], LONG).code, 1);
  });
});
