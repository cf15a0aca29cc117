// krd container lifecycle with the real docker 28 CLI: events, start again, restart policies,
// pause/unpause, rename, prune, detach keys, HostConfig limits.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startKrd } from './kit/krd.ts';
import { startKrdWithImage, stopKrdFixture, type KrdFixture } from './kit/krd-image.ts';

let f: KrdFixture;

before(async () => {
  f = await startKrdWithImage('kraud-krd-life-', { Cmd: ['sh'], Labels: { 'org.example.kit': 'life' } });
  // pull once, so the tests below run concurrently against a present image
  const pull = f.krd.docker(['pull', '-q', f.img]);
  assert.equal(pull.code, 0, pull.stderr);
});

after(() => stopKrdFixture(f ?? {}));

const stamp = () => (Date.now() / 1000).toFixed(3);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** docker inspect --format, trimmed. */
function inspect(name: string, format: string): string {
  return f.krd.docker(['inspect', '--format', format, name]).stdout.trim();
}

/** Polls until check() returns a truthy value (30 s at most: make test runs VM tests beside these). */
async function eventually<T>(what: string, check: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('krd lifecycle', { concurrency: true }, () => {
  test('docker events: since/until replay with filters, live stream, image events', async () => {
    const { krd, img } = f;
    const since = stamp();
    const run = krd.docker(['run', '--name', 'ev1', '-l', 'ev=yes', img, 'sh', '-c', 'exit 3']);
    assert.equal(run.code, 3, run.stderr);
    assert.equal(krd.docker(['rm', 'ev1']).code, 0);
    assert.equal(krd.docker(['tag', img, 'evtag:one']).code, 0);
    const until = stamp();
    const fmt = '{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "exitCode"}}';
    const replay = krd.docker(['events', '--since', since, '--until', until, '--filter', 'container=ev1', '--format', fmt]);
    assert.equal(replay.code, 0, replay.stderr);
    assert.deepEqual(replay.stdout.trim().split('\n').map((l) => l.trimEnd()), ['container create ev1', 'container attach ev1', 'container start ev1', 'container die ev1 3', 'container destroy ev1']);
    const byLabel = krd.docker(['events', '--since', since, '--until', until, '--filter', 'label=ev=yes', '--filter', 'event=die', '--format', '{{.Action}}']);
    assert.equal(byLabel.stdout.trim(), 'die');
    const images = krd.docker(['events', '--since', since, '--until', until, '--filter', 'type=image', '--filter', 'image=evtag:one', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
    assert.equal(images.stdout.trim(), 'tag evtag:one');
    // live: a subscriber sees a start as it happens
    const live = spawn('docker', ['events', '--filter', 'event=start', '--filter', 'container=ev2', '--format', '{{.Action}} {{.Actor.Attributes.name}}'], { env: krd.env });
    let out = '';
    live.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await sleep(300);
    assert.equal(krd.docker(['run', '-d', '--name', 'ev2', img, 'true']).code, 0);
    await eventually('the live start event', () => out.includes('\n')).finally(() => live.kill());
    assert.equal(out.trim(), 'start ev2');
    assert.equal(krd.docker(['rm', '-f', 'ev2']).code, 0);
  });

  test('docker start of an exited container keeps its file changes and appends to its logs', () => {
    const { krd, img } = f;
    const first = krd.docker(['run', '--name', 'st1', img, 'sh', '-c', 'cat /f 2>/dev/null; echo x >> /f; echo run']);
    assert.equal(first.stdout, 'run\n', first.stderr);
    const again = krd.docker(['start', '-a', 'st1']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'x\nrun\n');
    assert.equal(krd.docker(['start', 'st1']).code, 0);
    assert.equal(krd.docker(['wait', 'st1']).stdout.trim(), '0');
    assert.equal(krd.docker(['logs', 'st1']).stdout, 'run\nx\nrun\nx\nx\nrun\n');
    assert.equal(krd.docker(['rm', 'st1']).code, 0);
  });

  test('docker restart: stop with a timeout, then the same container runs again', async () => {
    const { krd, img } = f;
    assert.equal(krd.docker(['run', '-d', '--name', 'rs1', img, 'sh', '-c', 'echo started; exec sleep 60']).code, 0);
    const started = inspect('rs1', '{{.State.StartedAt}}');
    const since = stamp();
    const r = krd.docker(['restart', '-t', '1', 'rs1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(inspect('rs1', '{{.State.Status}} {{.RestartCount}}'), 'running 0');
    assert.notEqual(inspect('rs1', '{{.State.StartedAt}}'), started);
    await eventually('two starts in the log', () => krd.docker(['logs', 'rs1']).stdout === 'started\nstarted\n');
    const ev = krd.docker(['events', '--since', since, '--until', stamp(), '--filter', 'container=rs1', '--format', '{{.Action}}']);
    assert.deepEqual(ev.stdout.trim().split('\n'), ['kill', 'die', 'stop', 'start', 'restart']);
    assert.equal(krd.docker(['rm', '-f', 'rs1']).code, 0);
  });

  test('--restart on-failure:2 restarts twice, then stays exited; RestartCount in inspect', async () => {
    const { krd, img } = f;
    assert.equal(krd.docker(['run', '-d', '--restart', 'on-failure:2', '--name', 'of1', img, 'sh', '-c', 'echo try; exit 1']).code, 0);
    // as dockerd: a wait returns at an exit even when a restart follows
    assert.equal(krd.docker(['wait', 'of1']).stdout.trim(), '1');
    await eventually('on-failure to give up', () => inspect('of1', '{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}') === 'exited 2 1');
    assert.equal(krd.docker(['logs', 'of1']).stdout, 'try\ntry\ntry\n');
    assert.equal(inspect('of1', '{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}'), 'on-failure:2');
    const bad = krd.docker(['create', '--restart', 'sometimes', img]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid restart policy/);
    assert.equal(krd.docker(['rm', 'of1']).code, 0);
  });

  test('--restart always keeps it going with a growing delay (ps: Restarting); a manual stop ends it', async () => {
    const { krd, img } = f;
    assert.equal(krd.docker(['run', '-d', '--restart', 'always', '--name', 'al1', img, 'sh', '-c', 'echo tick; exit 1']).code, 0);
    // the delay doubles from 100 ms: after a few restarts it is long enough to see
    await eventually('ps to show Restarting', () => /^Restarting \(1\) .* ago$/.test(krd.docker(['ps', '--filter', 'name=al1', '--format', '{{.Status}}']).stdout.trim()));
    assert.equal(inspect('al1', '{{.State.Restarting}} {{.State.Running}}'), 'true true');
    assert.ok(Number(inspect('al1', '{{.RestartCount}}')) >= 3);
    const rm = krd.docker(['rm', 'al1']);
    assert.notEqual(rm.code, 0);
    assert.equal(krd.docker(['stop', 'al1']).code, 0);
    const count = inspect('al1', '{{.RestartCount}}');
    assert.equal(inspect('al1', '{{.State.Status}}'), 'exited');
    await sleep(2000);
    assert.equal(inspect('al1', '{{.State.Status}} {{.RestartCount}}'), `exited ${count}`);
    // docker start turns the policy on again and counts from zero
    assert.equal(krd.docker(['start', 'al1']).code, 0);
    await eventually('a restart after docker start', () => Number(inspect('al1', '{{.RestartCount}}')) >= 1);
    assert.equal(krd.docker(['rm', '-f', 'al1']).code, 0);
  });

  test('logs -f, attach and wait end at an exit even when the policy restarts the container, as dockerd 20.10 and docker 27 do', async () => {
    // Compared side by side with a real dockerd 20.10 (docker.io): its log driver is closed at each
    // exit, which ends every follower and attach; the next run gets a new one (docker/cli#5305).
    const { krd, img } = f;
    // each run prints, then waits until the test lets it end (the file is gone again for the next run)
    const script = 'echo run; until [ -e /tmp/go ]; do sleep 0.1; done; rm /tmp/go';
    assert.equal(krd.docker(['run', '-d', '--restart', 'always', '--name', 'lf1', img, 'sh', '-c', script]).code, 0);
    await eventually('the first run to print', () => krd.docker(['logs', 'lf1']).stdout === 'run\n');
    const follow = (args: string[]) => {
      const p = spawn('docker', args, { env: krd.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      return { p, out: () => out, exited };
    };
    const since = stamp();
    const logs = follow(['logs', '-f', 'lf1']);
    const attach = follow(['attach', '--no-stdin', 'lf1']);
    const wait = follow(['wait', 'lf1']);
    try {
      // all three connected (the history printed, the attach event, a moment for the wait), following while the run lasts
      await eventually('logs -f to print the history', () => logs.out() === 'run\n');
      await eventually('the attach', () => krd.docker(['events', '--since', since, '--until', stamp(), '--filter', 'event=attach', '--filter', 'container=lf1', '--format', '{{.Action}}']).stdout.trim() === 'attach');
      await sleep(1000);
      assert.deepEqual([logs, attach, wait].map((f) => f.p.exitCode), [null, null, null]);
      assert.equal(krd.docker(['exec', 'lf1', 'sh', '-c', ': > /tmp/go']).code, 0);
      for (const [what, f] of [['logs -f', logs], ['attach', attach], ['wait', wait]] as const) {
        assert.notEqual(await Promise.race([f.exited, sleep(30_000).then(() => 'timeout')]), 'timeout', `${what} did not end at the exit`);
      }
      assert.equal(logs.out(), 'run\n');
      assert.equal(wait.out().trim(), '0');
      // and the container did not stop for good: the policy starts it again
      await eventually('the second run', () => Number(inspect('lf1', '{{.RestartCount}}')) >= 1);
      assert.match(inspect('lf1', '{{.State.Status}}'), /^(running|restarting)$/);
    } finally {
      for (const f of [logs, attach, wait]) f.p.kill('SIGKILL');
    }
    assert.equal(krd.docker(['rm', '-f', 'lf1']).code, 0);
  });

  test('pause/unpause: a counter stops advancing while paused; stop and rm -f of a paused container', async () => {
    const { krd, img } = f;
    assert.equal(krd.docker(['run', '-d', '--name', 'pz1', img, 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done']).code, 0);
    await eventually('output', () => krd.docker(['logs', 'pz1']).stdout.length > 0);
    assert.equal(krd.docker(['pause', 'pz1']).code, 0);
    assert.equal(inspect('pz1', '{{.State.Status}} {{.State.Paused}} {{.State.Running}}'), 'paused true true');
    assert.match(krd.docker(['ps', '--filter', 'name=pz1', '--format', '{{.Status}}']).stdout, /^Up .* \(Paused\)$/m);
    const frozen = krd.docker(['logs', 'pz1']).stdout;
    await sleep(500);
    assert.equal(krd.docker(['logs', 'pz1']).stdout, frozen);
    assert.match(krd.docker(['pause', 'pz1']).stderr, /is already paused/);
    assert.match(krd.docker(['exec', 'pz1', 'true']).stderr, /is paused/);
    assert.equal(krd.docker(['unpause', 'pz1']).code, 0);
    await eventually('the counter to advance', () => krd.docker(['logs', 'pz1']).stdout.length > frozen.length);
    assert.equal(krd.docker(['pause', 'pz1']).code, 0);
    const stop = krd.docker(['stop', '-t', '1', 'pz1']);
    assert.equal(stop.code, 0, stop.stderr);
    // sh as PID 1 ignores SIGTERM: the SIGKILL after the timeout ends it, once thawed
    assert.equal(inspect('pz1', '{{.State.Status}} {{.State.ExitCode}}'), 'exited 137');
    assert.equal(krd.docker(['start', 'pz1']).code, 0);
    assert.equal(krd.docker(['pause', 'pz1']).code, 0);
    assert.match(krd.docker(['rm', 'pz1']).stderr, /paused/);
    assert.equal(krd.docker(['rm', '-f', 'pz1']).code, 0);
  });

  test('rename, and container prune with label and until filters', () => {
    const { krd, img } = f;
    assert.equal(krd.docker(['create', '--name', 'rn1', '-l', 'prune=me', img, 'true']).code, 0);
    assert.equal(krd.docker(['create', '--name', 'rn2', img, 'true']).code, 0);
    assert.match(krd.docker(['rename', 'rn1', 'rn2']).stderr, /already in use/);
    assert.equal(krd.docker(['rename', 'rn1', 'rn3']).code, 0);
    assert.equal(inspect('rn3', '{{.Name}}'), '/rn3');
    assert.notEqual(krd.docker(['inspect', 'rn1']).code, 0);
    const none = krd.docker(['container', 'prune', '-f', '--filter', 'until=1h']);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(inspect('rn3', '{{.Name}}'), '/rn3');
    const pruned = krd.docker(['container', 'prune', '-f', '--filter', 'label=prune=me']);
    assert.equal(pruned.code, 0, pruned.stderr);
    const id = pruned.stdout.split('\n').find((l) => /^[0-9a-f]{64}$/.test(l));
    assert.ok(id, pruned.stdout);
    assert.notEqual(krd.docker(['inspect', 'rn3']).code, 0);
    assert.equal(krd.docker(['rm', 'rn2']).code, 0);
  });

  test('detach keys: docker run -it through a pty with ctrl-p ctrl-q, attach --detach-keys; the container runs on', async () => {
    const { krd, img } = f;
    /** A docker command in a pty (util-linux script); returns its output so far and a way to type. */
    const inPty = (cmd: string) => {
      const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env: krd.env, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      return { p, out: () => out, exited, type: (s: string) => p.stdin.write(s) };
    };
    const run = inPty(`docker run -it --name dt1 ${img} sh`);
    try {
      await eventually('a prompt', () => /# /.test(run.out())).catch((e) => assert.fail(`${e}: ${JSON.stringify(run.out())}`));
      run.type('echo $((40+2))\r');
      await eventually('the answer', () => /^42\r?$/m.test(run.out()));
      // one key per read, as a terminal sends them
      run.type('\x10');
      await sleep(100);
      run.type('\x11');
      assert.equal(await Promise.race([run.exited, sleep(10_000).then(() => 'timeout')]), 0);
    } finally {
      run.p.kill('SIGKILL');
    }
    assert.equal(inspect('dt1', '{{.State.Status}}'), 'running');
    const att = inPty('docker attach --detach-keys ctrl-x dt1');
    try {
      await sleep(500);
      att.type('echo again\r');
      await eventually('the echo', () => /^again\r?$/m.test(att.out()));
      att.type('\x18');
      // the docker 28 CLI leaves `docker attach` with this line and exit code 1
      assert.notEqual(await Promise.race([att.exited, sleep(10_000).then(() => 'timeout')]), 'timeout');
      assert.match(att.out(), /read escape sequence/);
    } finally {
      att.p.kill('SIGKILL');
    }
    assert.equal(inspect('dt1', '{{.State.Status}}'), 'running');
    assert.equal(krd.docker(['rm', '-f', 'dt1']).code, 0);
  });

  test('detach keys on the API without a tty: the connection ends at the sequence, stdin stays open', async () => {
    const { krd, img } = f;
    assert.equal(krd.docker(['run', '-d', '-i', '--name', 'dt2', img, 'cat']).code, 0);
    const since = stamp();
    const attach = () => {
      const sock = net.connect(krd.socket);
      let got = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
      const ended = new Promise<void>((r) => sock.once('close', () => r()));
      sock.write('POST /containers/dt2/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x,x HTTP/1.1\r\nHost: krd\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n');
      return { sock, got: () => got.toString('latin1'), ended };
    };
    const a = attach();
    await eventually('the upgrade', () => a.got().includes('101 UPGRADED'));
    a.sock.write('one\n');
    await eventually('the echo', () => a.got().includes('one\n'));
    // ctrl-x then something else is not the sequence: both bytes go through
    a.sock.write('\x18y\n');
    await eventually('the echo', () => a.got().includes('\x18y\n'));
    a.sock.write('\x18x');
    await Promise.race([a.ended, sleep(5000).then(() => assert.fail('the connection did not end'))]);
    a.sock.destroy();
    assert.equal(inspect('dt2', '{{.State.Status}}'), 'running');
    const b = attach();
    await eventually('the upgrade', () => b.got().includes('101 UPGRADED'));
    b.sock.write('two\n');
    await eventually('the echo after a second attach', () => b.got().includes('two\n'));
    b.sock.destroy();
    assert.equal(krd.docker(['logs', 'dt2']).stdout, 'one\n\x18y\ntwo\n');
    const ev = krd.docker(['events', '--since', since, '--until', stamp(), '--filter', 'event=detach', '--format', '{{.Actor.Attributes.name}}']);
    assert.equal(ev.stdout.trim(), 'dt2');
    assert.equal(krd.docker(['rm', '-f', 'dt2']).code, 0);
  });

  test('HostConfig: --cap-drop/--cap-add, --read-only, --pids-limit, --cpus, --cpu-shares take effect and show in inspect', () => {
    const { krd, img } = f;
    const capEff = 'while read k v; do [ "$k" = CapEff: ] && echo $v; done < /proc/self/status';
    const r = krd.docker(['run', '--rm', '--cap-drop', 'NET_RAW', '--cap-add', 'cap_net_admin', '--read-only', img, 'sh', '-c', `${capEff}; touch /x 2>&1 || echo read-only`]);
    assert.equal(r.code, 0, r.stderr);
    // docker's default a80425fb without NET_RAW (bit 13), with NET_ADMIN (bit 12)
    assert.match(r.stdout, /^00000000a80415fb\n.*Read-only file system\nread-only\n$/s);
    assert.equal(krd.docker(['run', '-d', '--name', 'hc1', '--pids-limit', '12', '--cpus', '0.5', '--cpu-shares', '512', img, 'sleep', '60']).code, 0);
    assert.equal(inspect('hc1', '{{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Privileged}}'), '12 500000000 512 false false');
    const id = inspect('hc1', '{{.Id}}');
    // the container's cgroups: v1 controllers (this machine kind) or one v2 group
    const groups = ['', 'pids', 'cpu', 'cpu,cpuacct']
      .map((c) => join('/sys/fs/cgroup', c))
      .filter((d) => existsSync(d))
      .flatMap((d) => readdirSync(d).filter((n) => n.startsWith('kraud-')).map((n) => join(d, n, id)))
      .filter((d) => existsSync(d));
    const read = (file: string) => groups.map((d) => join(d, file)).filter((p) => existsSync(p)).map((p) => readFileSync(p, 'utf8').trim())[0];
    assert.equal(read('pids.max'), '12');
    if (read('cpu.max') !== undefined) assert.equal(read('cpu.max'), '50000 100000');
    else {
      assert.equal(read('cpu.cfs_quota_us'), '50000');
      assert.equal(read('cpu.shares'), '512');
    }
    // and the limit bites: the twelfth process cannot start
    const fork = krd.docker(['exec', 'hc1', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do sleep 30 & done 2>&1; wait']);
    assert.match(fork.stdout + fork.stderr, /fork|Resource temporarily unavailable|can't/i);
    assert.equal(krd.docker(['rm', '-f', 'hc1']).code, 0);
    const bad = [
      [['--privileged'], /privileged containers are not supported/],
      [['--cap-add', 'NOPE'], /unknown capability: "CAP_NOPE"/],
      [['--cpus', '999'], /Range of CPUs is from 0\.01 to/],
    ] as const;
    for (const [flags, message] of bad) {
      const c = krd.docker(['create', ...flags, img, 'true']);
      assert.notEqual(c.code, 0);
      assert.match(c.stderr, message);
    }
  });
});

describe('krd restarted: restart policies', () => {
  test('after kill -9 of krd: an `always` container that exited meanwhile runs again, so does a stopped `always` one; a stopped unless-stopped one does not', async () => {
    const { img } = f;
    let krd = f.krd;
    assert.equal(krd.docker(['run', '-d', '--restart', 'always', '--name', 'kr1', img, 'sh', '-c', 'echo up; exec sleep 60']).code, 0);
    assert.equal(krd.docker(['run', '-d', '--restart', 'unless-stopped', '--name', 'kr2', img, 'sleep', '60']).code, 0);
    assert.equal(krd.docker(['stop', '-t', '0', 'kr2']).code, 0);
    // docker starts `always` containers when the daemon comes up, even stopped by hand
    assert.equal(krd.docker(['run', '-d', '--restart', 'always', '--name', 'kr3', img, 'sleep', '60']).code, 0);
    assert.equal(krd.docker(['stop', '-t', '0', 'kr3']).code, 0);
    const pid = Number(inspect('kr1', '{{.State.Pid}}'));
    assert.ok(pid > 0);
    await krd.kill9();
    process.kill(pid, 'SIGKILL'); // it dies while krd is away
    await sleep(200);
    const again = await startKrd({ socket: krd.socket, dataRoot: krd.dataRoot });
    await krd.stop(true);
    f.krd = krd = again;
    await eventually('kr1 running again', () => inspect('kr1', '{{.State.Status}}') === 'running');
    await eventually('a second "up" in the log', () => krd.docker(['logs', 'kr1']).stdout === 'up\nup\n');
    assert.equal(inspect('kr2', '{{.State.Status}}'), 'exited');
    assert.equal(inspect('kr3', '{{.State.Status}}'), 'running');
    assert.equal(krd.docker(['rm', '-f', 'kr1', 'kr2', 'kr3']).code, 0);
  });
});
