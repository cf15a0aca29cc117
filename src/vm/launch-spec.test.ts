// The launch spec's checks and the config disk's bytes (what the C init parses).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configDisk, initPlan } from './config-disk.ts';
import { parseLaunchSpec, USER_NETWORK, validateLaunchSpec, type LaunchSpec } from './launch-spec.ts';

const spec: LaunchSpec = {
  version: 1,
  podId: 'p1',
  secret: 'ab'.repeat(32),
  hostname: 'p1',
  resources: { memoryMiB: 256, cpus: 1 },
  network: USER_NETWORK,
  images: [{ digest: `sha256:${'0'.repeat(64)}` }],
  containers: [
    {
      name: 'web',
      image: 0,
      args: ['/bin/sh', '-c', 'echo hi'],
      env: ['PATH=/bin', 'A=b c'],
      cwd: '/',
      user: 'user',
      uid: 1000,
      gid: 1000,
      groups: [1000, 10],
      caps: 'a80425fb',
      tty: false,
      openStdin: false,
      readonlyRootfs: false,
      mounts: [{ type: 'share', tag: 'v0', target: '/data', readonly: true }, { type: 'tmpfs', target: '/scratch' }],
      restartPolicy: { name: 'on-failure', maximumRetryCount: 2 },
    },
  ],
};
const clone = (): LaunchSpec => JSON.parse(JSON.stringify(spec)) as LaunchSpec;

test('a valid spec survives validation unchanged; JSON text parses the same', () => {
  assert.deepEqual(validateLaunchSpec(clone()), spec);
  assert.deepEqual(parseLaunchSpec(JSON.stringify(spec)), spec);
});

test('bad specs are one "launch spec: …" line naming the field', () => {
  const cases: [(s: LaunchSpec) => void, RegExp][] = [
    [(s) => (s.secret = 'short'), /secret must be 64 hex/],
    [(s) => s.containers.push(clone().containers[0]), /two containers are named web/],
    [(s) => (s.containers[0].image = 1), /containers\[0\]\.image must index images/],
    [(s) => (s.containers[0].args = []), /no command given/],
    [(s) => (s.containers[0].env = ['NOEQUALS']), /not KEY=VALUE/],
    [(s) => (s.containers[0].cwd = '/a/../b'), /cwd must be an absolute path/],
    [(s) => (s.containers[0].args = ['a\0b']), /without NUL/],
    [(s) => (s.containers = []), /nothing to run/],
    [(s) => (s.resources.memoryMiB = 10), /memoryMiB/],
    [(s) => ((s.network as { address: string }).address = '10.0.2.300/24'), /not an IPv4 address/],
    [(s) => (s.vdocker = { argv: ['node'], listen: { address: '0.0.0.0', port: 1 } }), /argv\[0\] must be an absolute path/],
    [(s) => (s.control = { mac: '52:54:00:12:34:56', address: '169.254.253.15/24' }), /control\.mac must differ/],
    [(s) => (s.control = { mac: '52:54:00:00:00:09', address: '169.254.253.15' }), /control\.address: not an IPv4 address\/prefix/],
    [(s) => (s.etc = { hosts: 'a\0b' }), /etc\.hosts must be text without NUL/],
    [(s) => (s.etc = { resolvConf: 'x'.repeat(70_000) }), /etc\.resolvConf must be text without NUL, at most 64 KiB/],
  ];
  for (const [mutate, msg] of cases) {
    const s = clone();
    mutate(s);
    assert.throws(() => validateLaunchSpec(s), (e: Error) => msg.test(e.message) && e.message.startsWith('launch spec: ') && !e.message.includes('\n'));
  }
  assert.throws(() => parseLaunchSpec('{'), /launch spec: not JSON/);
});

test('config disk: header, the JSON, then KEY\\0VALUE\\0 pairs; padded to 512', () => {
  const disk = configDisk(spec);
  assert.equal(disk.length % 512, 0);
  const text = disk.toString('latin1');
  const m = /^kraud-launch 1\n(\d+) (\d+)\n/.exec(text)!;
  assert.ok(m);
  const json = disk.subarray(m[0].length, m[0].length + Number(m[1])).toString();
  assert.deepEqual(JSON.parse(json), spec);
  const plan = disk.subarray(m[0].length + Number(m[1]), m[0].length + Number(m[1]) + Number(m[2]));
  assert.ok(plan.equals(initPlan(spec)));
  const parts = plan.toString().split('\0').slice(0, -1);
  const pairs = parts.flatMap((_, i) => (i % 2 ? [] : [[parts[i], parts[i + 1]]]));
  for (const want of [['net', 'static'], ['addr', '10.0.2.15/24'], ['share', 'v0:ro'], ['ctr', 'web'], ['groups', '1000,10'], ['env', 'A=b c'], ['restart', 'on-failure'], ['retries', '2'], ['bind', '/run/cradle/shares/v0:/data:ro'], ['tmpfs', '/scratch']]) {
    assert.ok(pairs.some(([k, v]) => k === want[0] && v === want[1]), `plan lacks ${want.join('=')}`);
  }
  assert.ok(disk.subarray(m[0].length + Number(m[1]) + Number(m[2])).every((b) => b === 0));
});

test('krd\'s pods: the control NIC, the host\'s /etc files and the shares (a file one too) reach the init plan; MACs name the NICs', () => {
  const shares = [{ tag: 'b0', readonly: true }, { tag: 'b1', readonly: false, file: true }];
  const s: LaunchSpec = { ...clone(), control: { mac: '52:54:00:6b:72:64', address: '169.254.253.15/24' }, etc: { hosts: '127.0.0.1\tlocalhost\n10.77.0.2\tpod\n', resolvConf: 'nameserver 10.77.0.1\n' }, shares };
  assert.deepEqual(validateLaunchSpec(JSON.parse(JSON.stringify(s))), s);
  const parts = initPlan(s).toString().split('\0').slice(0, -1);
  const pairs = parts.flatMap((_, i) => (i % 2 ? [] : [[parts[i], parts[i + 1]]]));
  for (const want of [['mac', '52:54:00:12:34:56'], ['ctlmac', '52:54:00:6b:72:64'], ['ctladdr', '169.254.253.15/24'], ['hosts', s.etc!.hosts!], ['resolv', 'nameserver 10.77.0.1\n'], ['share', 'b0:ro'], ['share', 'b1']]) {
    assert.ok(pairs.some(([k, v]) => k === want[0] && v === want[1]), `plan lacks ${want[0]}`);
  }
});
