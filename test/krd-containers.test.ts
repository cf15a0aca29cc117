// krd's containers driven by the real docker CLI (client 28): run attached (--rm, exit codes,
// stdin), detached with ps/logs/stop/rm, inspect, docker's error messages, and a kill -9
// restart of krd that still lists (and stops) what the old one started.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { TestRegistry } from './kit/registry.ts';
import { startKrd, type TestKrd } from './kit/krd.ts';
import { startKrdWithImage, stopKrdFixture } from './kit/krd-image.ts';

describe('krd containers with the docker CLI', () => {
  let work: string;
  let registry: TestRegistry;
  let krd: TestKrd;
  let img: string;

  before(async () => {
    // busybox with sleep added; no Entrypoint and no Env, so docker's default PATH applies
    ({ work, registry, img, krd } = await startKrdWithImage('kraud-krd-ctr-', { Cmd: ['sh'], Labels: { 'org.example.kit': 'ctr' } }));
  });

  after(() => stopKrdFixture({ work, registry, img, krd }));

  test('docker run --rm pulls the missing image and prints the output', () => {
    const r = krd.docker(['run', '--rm', img, 'echo', 'hello'], { timeout: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello\n');
    assert.match(r.stderr, /Unable to find image/);
    assert.equal(krd.docker(['ps', '-aq']).stdout, '', 'the --rm container is gone');
  });

  test('the exit code comes back; stderr stays apart from stdout', () => {
    const r = krd.docker(['run', '--rm', img, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('stdin reaches the container and its end does not cut the output', () => {
    const r = krd.docker(['run', '-i', '--rm', img, 'cat'], { input: 'hi\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    const wc = krd.docker(['run', '-i', '--rm', img, 'sh', '-c', 'cat; echo done'], { input: 'a\nb\n' });
    assert.equal(wc.stdout, 'a\nb\ndone\n', wc.stderr);
  });

  test('image config applies: default PATH, env, workdir, user, hostname', () => {
    const r = krd.docker(['run', '--rm', '-e', 'X=1', '-w', '/tmp', '-u', '1000:1000', '-h', 'box', img, 'sh', '-c', 'echo $PATH $X $(pwd) $(id -u) $(cat /proc/sys/kernel/hostname)']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin 1 /tmp 1000 box\n');
  });

  test('a bind mount, a memory limit, --init and a tty (raw stream)', async () => {
    await fsp.mkdir(join(work, 'share'), { recursive: true });
    await fsp.writeFile(join(work, 'share', 'f'), 'from the host\n');
    const bind = krd.docker(['run', '--rm', '-v', `${join(work, 'share')}:/mnt:ro`, '-m', '64m', '--init', img, 'sh', '-c', 'cat /mnt/f; echo x > /mnt/g || echo read-only']);
    assert.equal(bind.code, 0, bind.stderr);
    assert.equal(bind.stdout, 'from the host\nread-only\n');
    const tty = krd.docker(['run', '-t', '--rm', img, 'echo', 'hi']);
    assert.equal(tty.code, 0, tty.stderr);
    assert.equal(tty.stdout, 'hi\r\n');
    const c = krd.docker(['create', '-m', '64m', '--name', 'limited', img]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(krd.docker(['inspect', '--format', '{{.HostConfig.Memory}} {{.Config.Hostname}}', 'limited']).stdout.trim(), `${64 * 1024 * 1024} ${c.stdout.trim().slice(0, 12)}`);
    assert.equal(krd.docker(['rm', 'limited']).code, 0);
  });

  test('detached: ps shows Up, logs, stop, ps -a shows Exited, inspect, rm', () => {
    const run = krd.docker(['run', '-d', '--name', 'c1', img, 'sh', '-c', 'echo started; exec sleep 30']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    assert.match(id, /^[a-f0-9]{64}$/);
    const ps = krd.docker(['ps', '--format', '{{.ID}} {{.Names}} {{.Status}} {{.Command}}']);
    assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} c1 Up .* "sh -c 'echo started…`, 'm'));
    // start returns once sh is exec'd; its echo lands in the log a moment later: poll for it (30 s at most)
    let logs = '';
    for (const deadline = Date.now() + 30_000; !logs.includes('started') && Date.now() < deadline; ) logs = krd.docker(['logs', 'c1']).stdout;
    assert.equal(logs, 'started\n');
    const stamped = krd.docker(['logs', '-t', 'c1']).stdout;
    assert.match(stamped, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z started\n$/);
    assert.equal(krd.docker(['inspect', '--format', '{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.Labels}}', 'c1']).stdout.trim(), 'running true /c1 map[org.example.kit:ctr]');
    const stop = krd.docker(['stop', '-t', '1', 'c1']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout.trim(), 'c1');
    // sleep is PID 1 of its pid namespace: SIGTERM has no default action there, so SIGKILL ends it (as with docker)
    const psa = krd.docker(['ps', '-a', '--filter', 'name=c1', '--format', '{{.Names}} {{.Status}}']);
    assert.match(psa.stdout, /^c1 Exited \(137\) .*ago$/m);
    assert.equal(krd.docker(['ps', '-q']).stdout, '');
    assert.equal(krd.docker(['inspect', '--format', '{{.State.ExitCode}} {{.State.Running}}', 'c1']).stdout.trim(), '137 false');
    const rm = krd.docker(['rm', 'c1']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(krd.docker(['ps', '-aq']).stdout, '');
  });

  test('inspect of an exited container: its exit code; docker start of a created one; wait', () => {
    const created = krd.docker(['create', '--name', 'c2', img, 'sh', '-c', 'exit 7']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(krd.docker(['ps', '-a', '--format', '{{.Names}} {{.Status}}']).stdout.trim(), 'c2 Created');
    assert.equal(krd.docker(['start', 'c2']).code, 0);
    const wait = krd.docker(['wait', 'c2']);
    assert.equal(wait.stdout.trim(), '7', wait.stderr);
    assert.equal(krd.docker(['inspect', '--format', '{{.State.ExitCode}}', 'c2']).stdout.trim(), '7');
    assert.equal(krd.docker(['rm', 'c2']).code, 0);
  });

  test('kill with a signal, logs --tail and -f, ps filters', () => {
    const run = krd.docker(['run', '-d', '--name', 'k1', '--label', 'team=a', img, 'sh', '-c', 'echo 1; echo 2; echo 3 >&2; exec sleep 30']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(krd.docker(['run', '-d', '--name', 'k2', img, 'sh', '-c', 'echo x; exit 4']).code, 0);
    assert.equal(krd.docker(['wait', 'k2']).stdout.trim(), '4');
    // -f ends when the container exits: k2 has
    assert.equal(krd.docker(['logs', '-f', 'k2']).stdout, 'x\n');
    assert.equal(krd.docker(['ps', '--filter', 'label=team=a', '--format', '{{.Names}}']).stdout, 'k1\n');
    assert.equal(krd.docker(['ps', '-a', '--filter', 'status=exited', '--format', '{{.Names}}']).stdout, 'k2\n');
    let logs = { stdout: '', stderr: '' };
    for (const deadline = Date.now() + 30_000; logs.stderr !== '3\n' && Date.now() < deadline; ) logs = krd.docker(['logs', 'k1']);
    assert.equal(logs.stdout, '1\n2\n');
    assert.equal(krd.docker(['logs', '--tail', '1', 'k1']).stderr, '3\n');
    const kill = krd.docker(['kill', '-s', 'KILL', 'k1']);
    assert.equal(kill.code, 0, kill.stderr);
    assert.equal(krd.docker(['wait', 'k1']).stdout.trim(), '137');
    const again = krd.docker(['kill', 'k1']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /is not running/);
    assert.equal(krd.docker(['rm', 'k1', 'k2']).code, 0);
  });

  test("errors read like docker's", () => {
    for (const args of [['container', 'inspect', 'nope'], ['logs', 'nope'], ['stop', 'nope'], ['rm', 'nope'], ['start', 'nope']]) {
      const r = krd.docker(args);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /No such container: nope/, args.join(' '));
    }
    assert.match(krd.docker(['inspect', 'nope']).stderr, /No such object: nope/);
    const short = krd.docker(['create', '--name', 'x', img]);
    assert.notEqual(short.code, 0);
    assert.match(short.stderr, /Invalid container name \(x\)/);
    assert.equal(krd.docker(['create', '--name', 'dup', img]).code, 0);
    const dup = krd.docker(['create', '--name', 'dup', img]);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /Conflict\. The container name "\/dup" is already in use by container/);
    const running = krd.docker(['run', '-d', '--name', 'busy', img, 'sleep', '30']);
    assert.equal(running.code, 0, running.stderr);
    const rm = krd.docker(['rm', 'busy']);
    assert.notEqual(rm.code, 0);
    assert.match(rm.stderr, /container is running: stop the container before removing or force remove/);
    assert.equal(krd.docker(['rm', '-f', 'busy', 'dup']).code, 0);
    assert.equal(krd.docker(['ps', '-aq']).stdout, '');
  });

  test('docker diff, export and commit (-c, -m, -a) of a running container: the image carries its changes and config; bad input is one 4xx line', () => {
    const ok = (...args: string[]) => {
      const r = krd.docker(args);
      assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim();
    };
    ok('run', '-d', '--name', 'snap-src', img, 'sh', '-c', 'echo made > /tmp/made; rm /bin/sleep; touch /tmp/ready; exec busybox sleep 300');
    for (let i = 0; i < 100 && krd.docker(['exec', 'snap-src', 'test', '-f', '/tmp/ready']).code !== 0; i++) spawnSync('sleep', ['0.1']);
    assert.equal(ok('diff', 'snap-src'), 'C /bin\nD /bin/sleep\nC /tmp\nA /tmp/made\nA /tmp/ready');
    // docker export: the image's files with the container's changes, as one tar
    const tar = join(work, 'snap-src.tar');
    ok('export', '-o', tar, 'snap-src');
    const names = spawnSync('tar', ['tf', tar], { encoding: 'utf8' }).stdout.split('\n');
    assert.ok(names.includes('tmp/made') && names.includes('bin/sh') && !names.includes('bin/sleep'), names.join(' '));
    assert.equal(spawnSync('tar', ['xOf', tar, 'tmp/made'], { encoding: 'utf8' }).stdout, 'made\n');
    const images = ok('images', '-q');
    const id = ok('commit', '-c', 'CMD ["cat", "/tmp/made"]', '-c', 'ENV STAGE=two', '-m', 'first snap', '-a', 'kit <kit@example.test>', 'snap-src', 'snapped:v1');
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    assert.equal(ok('inspect', '-f', '{{.State.Status}}', 'snap-src'), 'running', 'paused for the commit, then running again');
    assert.equal(ok('run', '--rm', 'snapped:v1'), 'made');
    assert.equal(ok('run', '--rm', 'snapped:v1', 'sh', '-c', 'echo $STAGE; test -e /bin/sleep || echo gone'), 'two\ngone');
    const layers = Number(ok('image', 'inspect', '-f', '{{len .RootFS.Layers}}', img));
    assert.equal(ok('image', 'inspect', '-f', '{{.Id}}|{{.Comment}}|{{.Author}}|{{len .RootFS.Layers}}', 'snapped:v1'), `${id}|first snap|kit <kit@example.test>|${layers + 1}`);
    assert.equal(ok('history', '--format', '{{.Comment}}', 'snapped:v1').split('\n')[0], 'first snap');
    for (const [args, why] of [
      [['commit', 'nosuch', 'x:1'], /^Error response from daemon: No such container: nosuch$/],
      [['commit', '-c', 'RUN echo hi', 'snap-src', 'x:1'], /^Error response from daemon: RUN is not a valid change command$/],
    ] as const) {
      const r = krd.docker([...args]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr.trim(), why);
    }
    assert.equal(ok('images', '-q').split('\n').length, images.split('\n').length + 1, 'only snapped:v1 was added');
    ok('rm', '-f', 'snap-src');
    ok('rmi', 'snapped:v1');
  });

  test('docker update: limits and the restart policy of a running container; bad input is one 4xx line and changes nothing', async () => {
    const ok = (...args: string[]) => {
      const r = krd.docker(args);
      assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim();
    };
    ok('run', '-d', '--name', 'upd', '-m', '64m', img, 'sh', '-c', 'rm -f /tmp/stop; while [ ! -e /tmp/stop ]; do sleep 0.1; done');
    assert.equal(ok('update', '--memory', '128m', '--cpus', '0.5', '--pids-limit', '50', '--restart', 'always', 'upd'), 'upd');
    assert.equal(ok('inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}', 'upd'), '134217728 500000000 50 always');
    assert.match(ok('stats', '--no-stream', '--format', '{{.MemUsage}}', 'upd'), / \/ 128MiB$/);
    // the new policy applies: the process that ends comes back
    ok('exec', 'upd', 'sh', '-c', '>/tmp/stop');
    for (let i = 0; i < 100 && ok('inspect', '-f', '{{.RestartCount}}', 'upd') === '0'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(ok('inspect', '-f', '{{.RestartCount}}', 'upd'), '1');
    for (const [args, why] of [
      [['--memory', '1k'], /^Error response from daemon: Minimum memory limit allowed is 6MB$/m],
      [['--cpuset-cpus', '0'], /^Error response from daemon: updating CpusetCpus is not supported by krd$/m],
    ] as const) {
      const r = krd.docker(['update', ...args, 'upd']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, why);
    }
    assert.equal(ok('inspect', '-f', '{{.HostConfig.Memory}}', 'upd'), '134217728');
    ok('rm', '-f', 'upd');
    ok('run', '-d', '--rm', '--name', 'upd-rm', img, 'sleep', '300');
    const r = krd.docker(['update', '--restart', 'always', 'upd-rm']);
    assert.match(r.stderr, /Restart policy cannot be updated because AutoRemove is enabled for the container/);
    ok('rm', '-f', 'upd-rm');
  });

  test('kill -9 of krd: the restarted krd still lists the containers and stops the running one', async () => {
    assert.equal(krd.docker(['run', '-d', '--init', '--name', 'survivor', img, 'sleep', '60']).code, 0);
    assert.equal(krd.docker(['create', '--name', 'waiting', img, 'true']).code, 0);
    await krd.kill9();
    const again = await startKrd({ socket: krd.socket, dataRoot: krd.dataRoot });
    const old = krd;
    krd = again;
    await old.stop();
    const ps = krd.docker(['ps', '-a', '--format', '{{.Names}} {{.State}}']);
    assert.deepEqual(ps.stdout.trim().split('\n').sort(), ['survivor running', 'waiting created']);
    const stop = krd.docker(['stop', '-t', '1', 'survivor']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(krd.docker(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'survivor']).stdout.trim(), 'exited 143');
    assert.equal(krd.docker(['rm', 'survivor', 'waiting']).code, 0);
  });
});
