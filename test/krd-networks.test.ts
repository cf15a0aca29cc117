// krd networks with the docker 28 CLI, krd running inside a network namespace this test makes
// (so no packet leaves it) next to a second one playing "the internet" (a veth between them and
// a small HTTP server there). User networks with their subnets, name and alias resolution by
// the embedded DNS, connect/disconnect, -p/-P, outbound traffic, kill -9 and restart, and a
// namespace left with nothing but lo.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, standardLayers } from './kit/build-image.ts';
import { startKrd, type TestKrd } from './kit/krd.ts';
import { createTestNetns, fakeInternet, INET_IP, type FakeInternet, type TestNetns } from './kit/netns.ts';

const IMG = 'kraud-test:net';

describe('krd networks (docker CLI, krd in its own network namespace)', () => {
  let work: string;
  let ns: TestNetns;
  let inet: FakeInternet | undefined;
  let krd: TestKrd;

  const docker = (...args: string[]) => krd.docker(args);
  const ok = (...args: string[]) => {
    const r = krd.docker(args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** A shell line run in a throwaway container; waits for servers started just before. */
  const retry = (cmd: string) => `(for i in $(seq 50); do ${cmd} && exit 0; busybox sleep 0.1; done; exit 1)`;

  const api = (method: string, path: string, body: unknown) =>
    new Promise<{ status: number; body: { message: string } }>((resolve, reject) => {
      const req = http.request({ socketPath: krd.socket, method, path, headers: { 'Content-Type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });

  /** Polls (up to 10 s) for what the kernel finishes in the background. */
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(cond(), 'condition not reached within 10 s');
  };

  before(async () => {
    work = await fsp.mkdtemp(join(tmpdir(), 'kraud-krd-net-'));
    ns = createTestNetns();
    // krd's namespace reaches "the internet" through a veth; its default route points there
    inet = await fakeInternet(ns, work);
    const applets = ['sleep', 'nslookup', 'wget', 'ping', 'ip', 'httpd', 'awk'];
    const layers = [...standardLayers(), { entries: applets.map((a) => ({ type: 'symlink' as const, path: `bin/${a}`, target: 'busybox' })) }];
    const built = await buildImage(join(work, 'image'), layers, { config: { Cmd: ['sh'] }, tag: 'net' });
    krd = await startKrd({ netns: ns.name, socket: join(work, 'krd.sock'), dataRoot: join(work, 'data') });
    ok('load', '-i', built.dockerArchive);
  });

  after(async () => {
    if (krd) {
      for (const id of krd.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean)) krd.docker(['rm', '-f', id]);
      for (const n of krd.docker(['network', 'ls', '-q', '--filter', 'type=custom']).stdout.split('\n').filter(Boolean)) krd.docker(['network', 'rm', n]);
      await krd.stop();
      // nothing of krd's is left in its namespace: only lo and the test's own veth
      // (veths go with their container's namespace, which the kernel tears down in the background)
      const links = () => ns.run(['ip', '-o', 'link', 'show']).stdout.split('\n').filter(Boolean).map((l) => l.split(':')[1].trim().split('@')[0]).sort();
      await until(() => links().length === 2);
      assert.deepEqual(links(), ['lo', inet!.uplink].sort());
      assert.doesNotMatch(ns.run(['iptables-save']).stdout, /KRD-/);
    }
    ns?.remove();
    inet?.remove();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  test('network create/ls/inspect/rm with --subnet --gateway --ip-range; bad input is one 4xx line and leaves nothing', async () => {
    const id = ok('network', 'create', '--subnet', '10.88.0.0/16', '--gateway', '10.88.0.254', '--ip-range', '10.88.5.0/24', '--label', 'k=v', 'n1');
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.deepEqual(ok('network', 'ls', '--format', '{{.Name}} {{.Driver}}').split('\n').sort(), ['bridge bridge', 'host host', 'n1 bridge', 'none null']);
    assert.equal(ok('network', 'ls', '-q', '--filter', 'label=k=v'), id.slice(0, 12));
    assert.equal(ok('network', 'inspect', '--format', '{{json .IPAM.Config}}', 'n1'), '[{"Subnet":"10.88.0.0/16","IPRange":"10.88.5.0/24","Gateway":"10.88.0.254"}]');
    const linksBefore = ns.run(['ip', '-o', 'link']).stdout.split('\n').length;
    for (const [args, re] of [
      [['--subnet', 'nonsense'], /invalid CIDR address: nonsense/],
      [['--subnet', '10.88.7.0/24'], /Pool overlaps with other one on this address space/],
      // the CLI checks these two itself; krd's own answers are checked through the API below
      [['--subnet', '10.90.0.0/24', '--gateway', '10.91.0.1'], /gateway 10\.91\.0\.1/],
      [['--subnet', '10.90.0.0/24', '--ip-range', '10.92.0.0/28'], /range/],
    ] as [string[], RegExp][]) {
      const r = docker('network', 'create', ...args, 'bad');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    for (const [config, re] of [
      [{ Subnet: '10.90.0.0/24', Gateway: '10.91.0.1' }, /^invalid gateway 10\.91\.0\.1: not a host address of subnet 10\.90\.0\.0\/24$/],
      [{ Subnet: '10.90.0.0/24', IPRange: '10.92.0.0/28' }, /^invalid ip-range 10\.92\.0\.0\/28: not inside subnet/],
      [{ Subnet: '10.90.0.1/24' }, /^invalid subnet 10\.90\.0\.1\/24: it should be 10\.90\.0\.0\/24$/],
    ] as [object, RegExp][]) {
      const r = await api('POST', '/v1.47/networks/create', { Name: 'bad', IPAM: { Config: [config] } });
      assert.equal(r.status, 400);
      assert.match(r.body.message, re);
    }
    assert.match(docker('network', 'create', 'n1').stderr, /network with name n1 already exists/);
    assert.equal(ns.run(['ip', '-o', 'link']).stdout.split('\n').length, linksBefore);
    assert.doesNotMatch(ok('network', 'ls'), /\bbad\b/);
    assert.match(docker('network', 'rm', 'bridge').stderr, /bridge is a pre-defined network and cannot be removed/);
    // the first address handed out comes from the ip-range
    ok('run', '--rm', '--network', 'n1', IMG, 'true');
    assert.equal(ok('run', '--rm', '--network', 'n1', IMG, 'sh', '-c', 'ip -4 -o addr show eth0 | awk "{print \\$4}"'), '10.88.5.1/16');
    assert.equal(ok('network', 'rm', 'n1'), 'n1');
    assert.match(docker('network', 'inspect', 'n1').stderr, /network n1 not found/);
    await until(() => ns.run(['ip', '-o', 'link']).stdout.split('\n').length === linksBefore - 1);
  });

  test('containers on a user network reach each other by name, alias and short ID; unknown names are NXDOMAIN', () => {
    ok('network', 'create', '--subnet', '10.89.0.0/24', 'app');
    const srv = ok('run', '-d', '--name', 'srv', '--network', 'app', '--network-alias', 'web', IMG, 'httpd', '-f', '-p', '80', '-h', '/etc');
    const out = ok('run', '--rm', '--network', 'app', IMG, 'sh', '-c', `${retry('wget -qO- http://web/hostname')} && nslookup srv && ping -c1 -W2 ${srv.slice(0, 12)} && ! nslookup nosuch`);
    assert.match(out, new RegExp(`^${srv.slice(0, 12)}$`, 'm'));
    assert.match(out, /Name:\s+srv\nAddress:\s+10\.89\.0\.2/);
    assert.match(out, /1 packets received/);
    assert.equal(ok('inspect', '--format', '{{.NetworkSettings.Networks.app.IPAddress}} {{.NetworkSettings.Networks.app.Aliases}}', 'srv'), '10.89.0.2 [web]');
    assert.equal(ok('network', 'inspect', '--format', '{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}', 'app'), 'srv 10.89.0.2/24');
    assert.match(docker('network', 'rm', 'app').stderr, /has active endpoints/);
  });

  test('docker network connect/disconnect a running container, with an alias', () => {
    ok('run', '-d', '--name', 'late', IMG, 'sleep', '60');
    ok('network', 'connect', '--alias', 'latecomer', 'app', 'late');
    assert.equal(ok('inspect', '--format', '{{len .NetworkSettings.Networks}} {{.NetworkSettings.Networks.app.Aliases}}', 'late'), '2 [latecomer]');
    assert.match(ok('exec', 'late', 'sh', '-c', retry('wget -qO- http://srv/hostname')), /^[0-9a-f]{12}$/);
    assert.match(ok('run', '--rm', '--network', 'app', IMG, 'sh', '-c', 'nslookup latecomer'), /Address:\s+10\.89\.0\.\d+$/m);
    ok('network', 'disconnect', 'app', 'late');
    assert.equal(ok('inspect', '--format', '{{len .NetworkSettings.Networks}}', 'late'), '1');
    assert.notEqual(krd.docker(['exec', 'late', 'sh', '-c', 'ip link show eth1']).code, 0);
    assert.match(docker('network', 'disconnect', 'app', 'late').stderr, /is not connected to network app/);
    const events = ok('events', '--since', '0', '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=network', '--filter', 'network=app', '--format', '{{.Action}} {{.Actor.Attributes.name}}');
    assert.deepEqual([...new Set(events.split('\n'))], ['create app', 'connect app', 'disconnect app']);
    // --network container:late shares late's namespace, address and all
    const lateIp = ok('inspect', '--format', '{{.NetworkSettings.IPAddress}}', 'late');
    assert.equal(ok('run', '--rm', '--network', 'container:late', IMG, 'sh', '-c', 'ip -4 -o addr show eth0 | awk "{print \\$4}"'), `${lateIp}/16`);
  });

  test('-p publishes on krd\'s namespace (tcp; -P and port 0 pick free ports shown by docker port)', () => {
    ok('run', '-d', '--name', 'pub', '-p', '18080:80', '-p', '0:81', '-P', '--expose', '82', IMG, 'httpd', '-f', '-p', '80', '-h', '/etc');
    const ports = ok('port', 'pub').split('\n').sort();
    assert.equal(ports[0], '80/tcp -> 0.0.0.0:18080');
    assert.match(ports[1], /^81\/tcp -> 0\.0\.0\.0:\d+$/);
    assert.match(ports[2], /^82\/tcp -> 0\.0\.0\.0:\d+$/);
    const fetched = ns.run(['sh', '-c', retry('busybox wget -qO- http://127.0.0.1:18080/hostname')]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(fetched.stdout.trim(), ok('inspect', '--format', '{{.Config.Hostname}}', 'pub'));
    assert.match(ok('ps', '--format', '{{.Ports}}', '--filter', 'name=pub'), /0\.0\.0\.0:18080->80\/tcp/);
    assert.match(docker('run', '-d', '--name', 'clash', '-p', '18080:80', IMG, 'true').stderr, /port is already allocated/);
    // as in docker, a stopped container holds no host port; a start takes it again
    ok('stop', '-t', '1', 'pub');
    assert.equal(ok('port', 'pub'), '');
    ok('start', 'pub');
    assert.match(ok('port', 'pub'), /^80\/tcp -> 0\.0\.0\.0:18080$/m);
  });

  test('outbound: containers on the default and a user network fetch from "the internet"; --add-host and host-gateway', () => {
    for (const net of ['bridge', 'app']) {
      assert.equal(ok('run', '--rm', '--network', net, IMG, 'sh', '-c', retry(`wget -qO- http://${INET_IP}:8000/hello.txt`)), 'hello from the internet');
    }
    const hosts = ok('run', '--rm', '--add-host', 'db:10.1.2.3', '--add-host', 'gw:host-gateway', '--hostname', 'box1', IMG, 'cat', '/etc/hosts', '/etc/hostname');
    assert.match(hosts, /^10\.1\.2\.3\tdb$/m);
    assert.match(hosts, /^172\.17\.0\.1\tgw$/m);
    assert.match(hosts, /^172\.17\.0\.\d+\tbox1$/m);
    assert.match(hosts, /^box1$/m);
    // networks are isolated from each other: srv (on app) is out of reach from the default bridge
    const reach = (net: string, addr: string) => docker('run', '--rm', '--network', net, IMG, 'sh', '-c', `echo | busybox nc -w 1 ${addr}`).code === 0;
    assert.ok(reach('app', '10.89.0.2 80'));
    assert.ok(!reach('bridge', '10.89.0.2 80'));
    ok('network', 'create', '--internal', 'closed');
    assert.ok(!reach('closed', `${INET_IP} 8000`));
    ok('network', 'rm', 'closed');
    assert.equal(ok('run', '--rm', '--network', 'none', IMG, 'sh', '-c', 'ls /sys/class/net'), 'lo');
    assert.match(ok('run', '--rm', '--network', 'host', IMG, 'ip', '-o', 'link'), new RegExp(`: ${inet!.uplink}[:@]`));
  });

  test('docker stats: NET I/O counts the container\'s own interfaces; none for --network none', async () => {
    ok('run', '-d', '--name', 'talker', IMG, 'sleep', '300');
    ok('run', '-d', '--name', 'quiet', '--network', 'none', IMG, 'sleep', '300');
    ok('exec', 'talker', 'sh', '-c', `${retry(`wget -qO- http://${INET_IP}:8000/hello.txt`)} >/dev/null`);
    assert.doesNotMatch(ok('stats', '--no-stream', '--format', '{{.NetIO}}', 'talker'), /^0B \/ 0B$/);
    type NetStats = { networks?: Record<string, { rx_bytes: number; tx_bytes: number }> };
    const stats = (name: string) =>
      new Promise<NetStats>((resolve, reject) => {
        http.get({ socketPath: krd.socket, path: `/containers/${name}/stats?stream=0&one-shot=1` }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => resolve(JSON.parse(text) as NetStats));
        }).on('error', reject);
      });
    const talker = await stats('talker');
    assert.deepEqual(Object.keys(talker.networks ?? {}), ['eth0']);
    assert.ok(talker.networks!.eth0.rx_bytes > 0 && talker.networks!.eth0.tx_bytes > 0, JSON.stringify(talker.networks));
    assert.equal((await stats('quiet')).networks, undefined);
    assert.equal(ok('stats', '--no-stream', '--format', '{{.NetIO}}', 'quiet'), '0B / 0B');
    ok('rm', '-f', 'talker', 'quiet');
  });

  test('sysctls: dockerd\'s defaults (ICMP datagram sockets for all groups; a non-root user binds :80); --sysctl sets a namespaced one; bad ones are one 4xx line and leave nothing', async () => {
    // (busybox's ping opens raw sockets only, so ICMP datagram sockets are shown by the setting)
    const asUser = ok('run', '--rm', '-u', '1000', IMG, 'sh', '-c', 'cat /proc/sys/net/ipv4/ping_group_range; httpd -p 80 -h /tmp && echo bound');
    assert.equal(asUser, '0\t2147483647\nbound');
    // the host's network namespace keeps its own values
    assert.equal(ok('run', '--rm', '--network', 'host', IMG, 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'), ns.run(['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start']).stdout.trim());
    ok('create', '--name', 'tuned', '--sysctl', 'net.core.somaxconn=512', '--sysctl', 'kernel.shmmni=1000', IMG, 'cat', '/proc/sys/net/core/somaxconn', '/proc/sys/kernel/shmmni');
    assert.equal(ok('inspect', '--format', '{{json .HostConfig.Sysctls}}', 'tuned'), '{"kernel.shmmni":"1000","net.core.somaxconn":"512"}');
    assert.equal(ok('start', '-a', 'tuned'), '512\n1000');
    ok('rm', 'tuned');
    const before = ok('ps', '-aq');
    const r = docker('run', '--rm', '--network', 'host', '--sysctl', 'net.core.somaxconn=1', IMG, 'true');
    assert.equal(r.code, 125, r.stderr);
    // one line from krd (the CLI adds its own "Run 'docker run --help'" after a blank line)
    assert.match(r.stderr.split('\n')[0], /^docker: Error response from daemon: sysctl "net\.core\.somaxconn" is not allowed in the host's network namespace \(--network host\)$/);
    // what the docker CLI refuses itself, krd refuses too (other clients: compose, kra, the API)
    for (const [sysctls, why] of [
      [{ 'vm.swappiness': '10' }, /^sysctl "vm\.swappiness" is not in a separate kernel namespace$/],
      [{ 'net/../../x': '1' }, /not a sysctl name/],
      [{ 'net.core.somaxconn': 5 }, /the value must be a string/],
      [['net.core.somaxconn=5'], /Sysctls must be an object/],
    ] as const) {
      const a = await api('POST', '/containers/create', { Image: IMG, HostConfig: { Sysctls: sysctls } });
      assert.equal(a.status, 400, JSON.stringify(a.body));
      assert.match(a.body.message, why);
    }
    assert.equal(ok('ps', '-aq'), before);
  });

  test('kill -9 of krd: published ports and DNS come back after the restart; a stopped container starts again on its network after a graceful krd stop; rm cleans up', async () => {
    await krd.kill9();
    const again = await startKrd({ netns: ns.name, socket: krd.socket, dataRoot: krd.dataRoot });
    const old = krd;
    krd = again;
    await old.stop(true);
    const fetched = ns.run(['sh', '-c', retry('busybox wget -qO- http://127.0.0.1:18080/hostname')]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(ok('run', '--rm', '--network', 'app', IMG, 'nslookup', 'web'), /Address:\s+10\.89\.0\.2$/m);
    // a graceful stop drops the namespace of an exited container; its next start rebuilds it
    const srvId = ok('inspect', '--format', '{{.Id}}', 'srv');
    ok('stop', '-t', '1', 'srv');
    await krd.stop(true);
    assert.ok(!(await fsp.readFile('/proc/self/mountinfo', 'utf8')).includes(`${krd.dataRoot}/network/containers/${srvId}`));
    krd = await startKrd({ netns: ns.name, socket: krd.socket, dataRoot: krd.dataRoot });
    ok('start', 'srv');
    assert.equal(ok('run', '--rm', '--network', 'app', IMG, 'sh', '-c', retry('wget -qO- http://web/hostname')), srvId.slice(0, 12));
    ok('rm', '-f', 'srv', 'pub', 'late', 'clash');
    ok('network', 'rm', 'app');
    await until(() => !/\bkv/.test(ns.run(['ip', '-o', 'link']).stdout));
  });
});
