// krd's volumes driven by the real docker CLI (client 28): docker volume create/ls/inspect/rm/
// prune, named volumes shared by two containers and filled from the image, anonymous volumes
// (image VOLUME, -v /path) removed by rm -v and --rm, volumes in use refused, --mount
// volume/bind/tmpfs, --tmpfs, read-only mounts, driver options, bad input leaving nothing behind,
// and the volume events.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { TestRegistry } from './kit/registry.ts';
import { startKrd, type TestKrd } from './kit/krd.ts';
import { startKrdWithImage, stopKrdFixture } from './kit/krd-image.ts';

const ANON = 'com.docker.volume.anonymous';

describe('krd volumes with the docker CLI', () => {
  let work: string;
  let registry: TestRegistry;
  let krd: TestKrd;
  let img: string;
  const since = String(Math.floor(Date.now() / 1000) - 1);

  const ok = (args: string[]): string => {
    const r = krd.docker(args, { timeout: 60_000 });
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** A refused command: exit code and docker's one-line message from the daemon. */
  const refused = (args: string[], message: RegExp): void => {
    const r = krd.docker(args);
    assert.notEqual(r.code, 0, `docker ${args.join(' ')} should fail`);
    const line = r.stderr.split('\n').find((l) => l.includes('Error response from daemon')) ?? r.stderr;
    assert.match(line, message);
  };
  const volumes = (): string[] => ok(['volume', 'ls', '-q']).split('\n').filter(Boolean);

  before(async () => {
    ({ work, registry, img, krd } = await startKrdWithImage(
      'kraud-krd-vol-',
      { Cmd: ['sh'], Volumes: { '/anon': {} } },
      [
        { type: 'dir', path: 'seed/', mode: 0o750, uid: 1000, gid: 1000 },
        { type: 'file', path: 'seed/a.txt', content: 'from the image\n', mode: 0o640, uid: 1000, gid: 1000 },
        { type: 'symlink', path: 'seed/link', target: 'a.txt' },
        { type: 'dir', path: 'seed/sub/' },
        { type: 'file', path: 'seed/sub/b', content: 'b\n', mode: 0o600, uid: 7, gid: 8 },
        { type: 'dir', path: 'anon/' },
        { type: 'file', path: 'anon/f', content: 'anonymous content\n' },
      ],
    ));
    ok(['pull', img]);
  });

  after(async () => {
    // a tmpfs volume left mounted by a failed test must not outlive it on the host
    const left = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4]).filter((p) => p?.startsWith(`${work}/`));
    for (const p of left) spawnSync('umount', ['-l', p]);
    await stopKrdFixture({ work, registry, img, krd });
  });

  test('volume create / ls (filters) / inspect / rm', () => {
    assert.equal(ok(['volume', 'create', '--label', 'team=a', 'v1']), 'v1\n');
    assert.equal(ok(['volume', 'create', 'v2']), 'v2\n');
    assert.equal(ok(['volume', 'create', 'v2']), 'v2\n', 'creating an existing volume is fine, as with docker');
    const ls = ok(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}']);
    assert.match(ls, /^local v1$/m);
    assert.match(ls, /^local v2$/m);
    assert.equal(ok(['volume', 'ls', '-q', '-f', 'label=team=a']), 'v1\n');
    assert.equal(ok(['volume', 'ls', '-q', '-f', 'name=v2', '-f', 'driver=local']), 'v2\n');
    assert.match(ok(['volume', 'ls', '-q', '-f', 'dangling=true']), /^v1$/m);
    const [v] = JSON.parse(ok(['volume', 'inspect', 'v1']));
    assert.equal(v.Name, 'v1');
    assert.equal(v.Driver, 'local');
    assert.equal(v.Scope, 'local');
    assert.deepEqual(v.Labels, { team: 'a' });
    assert.equal(v.Mountpoint, join(krd.dataRoot, 'volumes', 'v1', '_data'));
    assert.match(v.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(ok(['volume', 'inspect', '--format', '{{.Name}} {{.Options}}', 'v2']), 'v2 map[]\n');
    assert.equal(ok(['volume', 'rm', 'v1', 'v2']), 'v1\nv2\n');
    refused(['volume', 'inspect', 'v1'], /get v1: no such volume/);
    refused(['volume', 'rm', 'v1'], /no such volume/);
    assert.equal(krd.docker(['volume', 'rm', '-f', 'v1']).code, 0, 'rm -f of a missing volume is not an error');
  });

  test('bad names, options and drivers: one-line errors, no volume left behind', () => {
    const before = volumes();
    refused(['volume', 'create', 'bad$name'], /create bad\$name: "bad\$name" includes invalid characters for a local volume name/);
    refused(['volume', 'create', 'x'], /includes invalid characters/);
    refused(['volume', 'create', '-o', 'foo=bar', 'opts1'], /^Error response from daemon: create opts1: invalid option: "foo"$/);
    refused(['volume', 'create', '-o', 'type=none', '-o', 'o=bind', 'opts2'], /missing required option: "device"/);
    refused(['volume', 'create', '-o', 'type=none', '-o', 'o=bind', '-o', `device=${join(work, 'missing')}`, 'opts3'], /bind source path does not exist/);
    refused(['volume', 'create', '-d', 'nosuch', 'drv1'], /plugin "nosuch" not found/);
    assert.deepEqual(volumes(), before);
  });

  test('a named volume keeps its data across containers and is created on first use', () => {
    assert.equal(ok(['run', '--rm', '-v', 'shared:/d', img, 'sh', '-c', 'echo kept > /d/f']), '');
    assert.ok(volumes().includes('shared'), 'auto-created like docker');
    assert.equal(ok(['run', '--rm', '-v', 'shared:/d', img, 'cat', '/d/f']), 'kept\n');
    assert.equal(ok(['run', '--rm', '--mount', 'type=volume,src=shared,dst=/other', img, 'cat', '/other/f']), 'kept\n');
    assert.equal(ok(['volume', 'rm', 'shared']), 'shared\n');
  });

  test('a new named volume is filled from the image (owners, modes, links), unless nocopy', async () => {
    const out = ok(['run', '--rm', '-v', 'seeded:/seed', img, 'sh', '-c', 'cat /seed/a.txt; busybox readlink /seed/link; busybox stat -c "%n %u:%g %a" /seed /seed/a.txt /seed/sub/b']);
    assert.equal(out, 'from the image\na.txt\n/seed 1000:1000 750\n/seed/a.txt 1000:1000 640\n/seed/sub/b 7:8 600\n');
    // a volume with content is not filled again: what containers wrote stays
    ok(['run', '--rm', '-v', 'seeded:/seed', img, 'sh', '-c', 'rm /seed/a.txt; echo mine > /seed/own']);
    assert.equal(ok(['run', '--rm', '-v', 'seeded:/seed', img, 'sh', '-c', 'ls /seed']), 'link\nown\nsub\n');
    const mountpoint = ok(['volume', 'inspect', '--format', '{{.Mountpoint}}', 'seeded']).trim();
    assert.equal(await fsp.readFile(join(mountpoint, 'own'), 'utf8'), 'mine\n');
    assert.equal(ok(['run', '--rm', '--mount', 'type=volume,src=empty1,dst=/seed,volume-nocopy', img, 'ls', '-A', '/seed']), '');
    assert.equal(ok(['run', '--rm', '-v', 'empty2:/seed:nocopy', img, 'ls', '-A', '/seed']), '');
    ok(['volume', 'rm', 'seeded', 'empty1', 'empty2']);
  });

  test('anonymous volumes: image VOLUME and -v /path; rm -v and --rm remove them, prune the rest', () => {
    const id = ok(['create', '--name', 'anon1', '-v', '/scratch', img, 'cat', '/anon/f']).trim();
    const mounts = JSON.parse(ok(['inspect', '--format', '{{json .Mounts}}', 'anon1'])) as { Type: string; Name: string; Destination: string; Driver: string; RW: boolean }[];
    assert.deepEqual(mounts.map((m) => [m.Type, m.Destination, m.Driver, m.RW]).sort(), [['volume', '/anon', 'local', true], ['volume', '/scratch', 'local', true]]);
    for (const m of mounts) {
      assert.match(m.Name, /^[0-9a-f]{64}$/);
      assert.equal(ok(['volume', 'inspect', '--format', `{{index .Labels "${ANON}"}}|{{len .Labels}}`, m.Name]), '|1\n');
    }
    assert.equal(ok(['start', '-a', 'anon1']), 'anonymous content\n', 'filled from the image like a named one');
    ok(['rm', '-v', id]);
    for (const m of mounts) assert.ok(!volumes().includes(m.Name), 'rm -v removed the anonymous volume');

    const count = volumes().length;
    assert.equal(ok(['run', '--rm', '-v', 'named-stays:/n', img, 'true']), '');
    assert.deepEqual(volumes().filter((v) => v.length === 64).length, volumes().length - count - 1, '--rm took its anonymous volume');
    assert.ok(volumes().includes('named-stays'));

    ok(['run', '--name', 'anon2', img, 'true']);
    ok(['rm', 'anon2']);
    const left = volumes().filter((v) => /^[0-9a-f]{64}$/.test(v));
    assert.equal(left.length, 1, 'rm without -v keeps the anonymous volume');
    assert.match(ok(['volume', 'prune', '-f']), new RegExp(`Deleted Volumes:\\n${left[0]}\\n`));
    assert.ok(volumes().includes('named-stays'), 'prune keeps named volumes');
    assert.match(ok(['volume', 'prune', '-af']), /named-stays/);
    assert.deepEqual(volumes(), []);
  });

  test('docker system df shows volume sizes; ps --filter volume; prune of an older API takes named volumes too', () => {
    ok(['run', '--name', 'sized', '-v', 'dfvol:/d', img, 'sh', '-c', 'echo 0123456789 > /d/f']);
    const df = ok(['system', 'df', '-v', '--format', '{{json .Volumes}}']);
    const vols = JSON.parse(df) as { Name: string; Links: string; Size: string }[];
    const v = vols.find((x) => x.Name === 'dfvol');
    assert.ok(v, df);
    assert.equal(v.Links, '1');
    assert.equal(v.Size, '11B');
    assert.match(ok(['system', 'df']), /^Local Volumes\s+\d+\s+\d+\s+/m);
    assert.equal(ok(['ps', '-a', '--filter', 'volume=dfvol', '--format', '{{.Names}}']), 'sized\n');
    assert.equal(ok(['ps', '-a', '--filter', 'volume=/d', '--format', '{{.Names}}']), 'sized\n');
    assert.equal(ok(['ps', '-a', '--filter', 'volume=other', '--format', '{{.Names}}']), '');
    ok(['rm', 'sized']);
    const old = krd.docker(['volume', 'prune', '-f'], { env: { DOCKER_API_VERSION: '1.41' } });
    assert.equal(old.code, 0, old.stderr);
    assert.match(old.stdout, /dfvol/, 'API 1.41 prunes every unused volume, as dockerd did then');
  });

  test('a volume in use is not removed (409, one line) nor pruned', () => {
    const id = ok(['create', '--name', 'user1', '-v', 'busy:/d', img, 'true']).trim();
    refused(['volume', 'rm', 'busy'], new RegExp(`^Error response from daemon: remove busy: volume is in use - \\[${id}\\]$`));
    refused(['volume', 'rm', '-f', 'busy'], /volume is in use/);
    ok(['volume', 'prune', '-af']);
    assert.ok(volumes().includes('busy'));
    assert.doesNotMatch(ok(['volume', 'ls', '-q', '-f', 'dangling=true']), /busy/);
    ok(['rm', 'user1']);
    assert.equal(ok(['volume', 'rm', 'busy']), 'busy\n');
  });

  test('--mount type=tmpfs and type=bind, --tmpfs, read-only -v (a directory and a file)', async () => {
    const out = ok(['run', '--rm', '--mount', 'type=tmpfs,dst=/t,tmpfs-size=1048576,tmpfs-mode=1770', '--tmpfs', '/t2:size=2m,exec', img, 'sh', '-c', 'busybox grep -E " /t2? " /proc/mounts; busybox stat -c %a /t']);
    assert.match(out, /^tmpfs \/t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770/m);
    assert.match(out, /^tmpfs \/t2 tmpfs rw,nosuid,nodev,relatime,size=2048k/m);
    assert.match(out, /^1770$/m);
    const host = join(work, 'bound');
    await fsp.mkdir(host, { recursive: true });
    ok(['run', '--rm', '--mount', `type=bind,src=${host},dst=/b`, img, 'sh', '-c', 'echo via-mount > /b/f']);
    assert.equal(await fsp.readFile(join(host, 'f'), 'utf8'), 'via-mount\n');
    const script = 'cat /b/f; echo x > /b/g || echo bind-ro; echo x > /v/g || echo vol-ro; cat /etc/app.conf; echo x > /etc/app.conf || echo file-ro';
    const ro = krd.docker(['run', '--rm', '--mount', `type=bind,src=${host},dst=/b,readonly`, '-v', 'rovol:/v:ro', '-v', `${join(host, 'f')}:/etc/app.conf:ro`, img, 'sh', '-c', script]);
    assert.equal(ro.code, 0, ro.stderr);
    assert.equal(ro.stdout, 'via-mount\nbind-ro\nvol-ro\nvia-mount\nfile-ro\n');
    assert.match(ro.stderr, /Read-only file system/);
    const c = ok(['create', '--name', 'insp', '-v', 'rovol:/v:ro', '-v', `${host}:/h`, '--mount', 'type=tmpfs,dst=/t', img, 'true']).trim();
    // dockerd keeps them in a map: no order to rely on
    const mounts = (JSON.parse(ok(['inspect', '--format', '{{json .Mounts}}', c])) as { Destination: string; Name?: string }[]).sort((a, b) => a.Destination.localeCompare(b.Destination));
    const anon = mounts[0].Name!;
    assert.match(anon, /^[0-9a-f]{64}$/);
    assert.deepEqual(mounts, [
      { Type: 'volume', Name: anon, Source: join(krd.dataRoot, 'volumes', anon, '_data'), Destination: '/anon', Driver: 'local', Mode: '', RW: true, Propagation: '' },
      { Type: 'bind', Source: host, Destination: '/h', Mode: '', RW: true, Propagation: 'rprivate' },
      { Type: 'tmpfs', Source: '', Destination: '/t', Mode: '', RW: true, Propagation: '' },
      { Type: 'volume', Name: 'rovol', Source: join(krd.dataRoot, 'volumes', 'rovol', '_data'), Destination: '/v', Driver: 'local', Mode: 'ro', RW: false, Propagation: '' },
    ]);
    ok(['rm', '-v', 'insp']);
    ok(['volume', 'rm', 'rovol']);
  });

  test('driver options: o=bind of a host dir, type=tmpfs', async () => {
    const host = join(work, 'device');
    await fsp.mkdir(host, { recursive: true });
    ok(['volume', 'create', '-o', 'type=none', '-o', 'o=bind', '-o', `device=${host}`, 'hostdir']);
    assert.equal(ok(['volume', 'inspect', '--format', '{{.Options.device}} {{.Options.o}}', 'hostdir']), `${host} bind\n`);
    ok(['run', '--rm', '-v', 'hostdir:/d', img, 'sh', '-c', 'echo on-host > /d/f']);
    assert.equal(await fsp.readFile(join(host, 'f'), 'utf8'), 'on-host\n');
    ok(['volume', 'rm', 'hostdir']);
    assert.equal(await fsp.readFile(join(host, 'f'), 'utf8'), 'on-host\n', 'removing the volume leaves the host dir alone');

    ok(['volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=1m', 'mem']);
    const out = ok(['run', '--rm', '-v', 'mem:/m', img, 'sh', '-c', 'busybox grep " /m " /proc/mounts; echo x > /m/f && echo wrote']);
    assert.match(out, /^tmpfs \/m tmpfs rw,.*size=1024k/m);
    assert.match(out, /wrote/);
    const mountpoint = ok(['volume', 'inspect', '--format', '{{.Mountpoint}}', 'mem']).trim();
    assert.equal(ok(['volume', 'rm', 'mem']), 'mem\n');
    const mounts = await fsp.readFile('/proc/self/mountinfo', 'utf8');
    assert.ok(!mounts.includes(mountpoint), 'the tmpfs is unmounted from the host');
  });

  test('bad -v / --mount specs: one-line errors, no volume or container left behind', () => {
    const vols = volumes();
    const ctrs = ok(['ps', '-aq']);
    refused(['create', '-v', 'bad$:/x', img], /create bad\$: "bad\$" includes invalid characters for a local volume name/);
    refused(['create', '-v', 'good1:relative', img], /^Error response from daemon: invalid volume specification: 'good1:relative': invalid mount config for type "volume": invalid mount path: 'relative' mount path must be absolute$/);
    refused(['create', '-v', 'good2:/x:bogus', img], /invalid mode: bogus/);
    refused(['create', '-v', 'good3:/x', '-v', 'good4:/x', img], /Duplicate mount point: \/x/);
    refused(['create', '--mount', `type=bind,src=${join(work, 'nope')},dst=/x`, img], /invalid mount config for type "bind": bind source path does not exist/);
    refused(['create', '--mount', 'type=tmpfs,src=foo,dst=/x', img], /field Source must not be specified/);
    refused(['create', '--tmpfs', '/x:bogus', img], /invalid tmpfs option "bogus"/);
    refused(['create', '-v', 'good5:/x', '--mount', 'type=volume,dst=/y,volume-driver=nosuch', img], /plugin "nosuch" not found/);
    assert.deepEqual(volumes(), vols, 'no volume was created');
    assert.equal(ok(['ps', '-aq']), ctrs, 'no container was created');
  });

  test('kill -9 of krd: volumes, their data and who uses them survive the restart', async () => {
    ok(['run', '--name', 'holder', '-v', 'durable:/d', img, 'sh', '-c', 'echo survives > /d/f']);
    await krd.kill9();
    const again = await startKrd({ socket: krd.socket, dataRoot: krd.dataRoot });
    const old = krd;
    krd = again;
    await old.stop();
    assert.ok(volumes().includes('durable'));
    refused(['volume', 'rm', 'durable'], /remove durable: volume is in use/);
    assert.equal(ok(['run', '--rm', '-v', 'durable:/d', img, 'cat', '/d/f']), 'survives\n');
    ok(['rm', 'holder']);
    assert.equal(ok(['volume', 'rm', 'durable']), 'durable\n');
  });

  test('volume events: create, mount, unmount, destroy', () => {
    ok(['run', '--rm', '-v', 'evvol:/d', img, 'true']);
    ok(['volume', 'rm', 'evvol']);
    const until = String(Math.floor(Date.now() / 1000) + 1);
    const out = ok(['events', '--since', since, '--until', until, '--filter', 'type=volume', '--filter', 'volume=evvol', '--format', '{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}} {{.Actor.Attributes.destination}}']);
    assert.equal(out, 'create evvol local <no value>\nmount evvol local /d\nunmount evvol local <no value>\ndestroy evvol local <no value>\n');
  });
});
