// Watching containers through krd with the real docker 28 CLI: docker top (docker's default ps
// columns, ps_args), docker stats (--no-stream numbers the CLI computes from two samples, the
// streaming API), healthchecks (from the image and the request; starting → unhealthy → healthy in
// ps and inspect, the health filter, health_status events, timeouts, --no-healthcheck).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startKrdWithImage, stopKrdFixture, type KrdFixture } from './kit/krd-image.ts';

let f: KrdFixture;

before(async () => {
  // the image's check runs hourly: containers that do not shorten it see no probe during the tests
  f = await startKrdWithImage('kraud-krd-observe-', { Cmd: ['sh'], Healthcheck: { Test: ['CMD-SHELL', 'test -f /tmp/ok'], Interval: 3600e9 } });
  assert.equal(f.krd.docker(['pull', '-q', f.img], { timeout: 60_000 }).code, 0);
  const quiet = f.krd.docker(['run', '-d', '--name', 'quiet', '-m', '64m', f.img, 'sleep', '300']);
  assert.equal(quiet.code, 0, quiet.stderr);
  const busy = f.krd.docker(['run', '-d', '--name', 'busy', f.img, 'sh', '-c', 'while :; do :; done']);
  assert.equal(busy.code, 0, busy.stderr);
});

after(() => stopKrdFixture(f ?? {}));

/** Lines of a streaming GET, until `count` arrived (then the request is dropped). */
function streamLines(path: string, count: number): Promise<{ status: number; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: f.krd.socket, path }, (res) => {
      let buf = '';
      const lines: string[] = [];
      res.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
        if (lines.length >= count) {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, lines });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, lines }));
    });
    req.on('error', reject);
  });
}

test("docker top: docker's default columns, the container's processes only; ps_args", () => {
  const exec = f.krd.docker(['exec', '-d', 'quiet', 'sleep', '299']);
  assert.equal(exec.code, 0, exec.stderr);
  const r = f.krd.docker(['top', 'quiet']);
  assert.equal(r.code, 0, r.stderr);
  const [header, ...rows] = r.stdout.trim().split('\n');
  assert.deepEqual(header.trim().split(/\s+/), ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
  const cmds = rows.map((l) => l.trim().split(/\s+/).slice(7).join(' ')).sort();
  assert.deepEqual(cmds, ['sleep 299', 'sleep 300']);
  assert.ok(rows.every((l) => l.startsWith('root')), r.stdout);
  const custom = f.krd.docker(['top', 'quiet', '-o', 'pid,comm']);
  assert.equal(custom.code, 0, custom.stderr);
  assert.match(custom.stdout, /^\s*PID\s+COMMAND\n/);
  assert.equal(custom.stdout.trim().split('\n').length, 3);
  const stopped = f.krd.docker(['create', '--name', 'idle', f.img, 'true']);
  assert.equal(stopped.code, 0);
  const notRunning = f.krd.docker(['top', 'idle']);
  assert.notEqual(notRunning.code, 0);
  assert.match(notRunning.stderr, /is not running/);
});

test('docker stats --no-stream: CPU % from two samples, memory usage / limit, pids', () => {
  const r = f.krd.docker(['stats', '--no-stream', '--format', '{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}', 'quiet', 'busy']);
  assert.equal(r.code, 0, r.stderr);
  const rows = new Map(r.stdout.trim().split('\n').map((l) => [l.split('|')[0], l.split('|')]));
  const [, qCpu, qMem, , qPids] = rows.get('quiet')!;
  assert.match(qMem, /^[\d.]+(B|KiB|MiB) \/ 64MiB$/, r.stdout);
  assert.ok(parseFloat(qCpu) < 5, r.stdout);
  assert.equal(qPids, '2'); // sleep 300 and the exec's sleep 299
  const [, bCpu, bMem] = rows.get('busy')!;
  // a busy loop shows CPU time (how much depends on what else the host runs: 2 cores shared by
  // several test suites can leave it a tenth of one)
  assert.ok(parseFloat(bCpu) > 2 && parseFloat(bCpu) > parseFloat(qCpu), `a busy loop shows CPU: ${r.stdout}`);
  assert.match(bMem, /\/ [\d.]+GiB$/, 'no limit: the host memory');
});

test('the stats API streams a sample a second; one-shot answers at once', async () => {
  const t0 = Date.now();
  const s = await streamLines('/containers/busy/stats', 2);
  assert.equal(s.status, 200);
  assert.equal(s.lines.length, 2);
  const [a, b] = s.lines.map((l) => JSON.parse(l));
  assert.equal(a.name, '/busy');
  assert.equal(b.precpu_stats.cpu_usage.total_usage, a.cpu_stats.cpu_usage.total_usage);
  assert.ok(b.cpu_stats.cpu_usage.total_usage > a.cpu_stats.cpu_usage.total_usage);
  assert.ok(b.cpu_stats.system_cpu_usage > a.cpu_stats.system_cpu_usage);
  assert.ok(b.cpu_stats.online_cpus >= 1);
  assert.ok(b.memory_stats.usage > 0 && b.memory_stats.limit > 0);
  assert.ok(Date.now() - t0 >= 900);
  const t1 = Date.now();
  const one = await streamLines('/containers/quiet/stats?stream=false&one-shot=true', 1);
  assert.equal(one.lines.length, 1);
  assert.ok(Date.now() - t1 < 800);
  const missing = await streamLines('/containers/nope/stats?stream=false', 1);
  assert.equal(missing.status, 404);
});

const stamp = () => (Date.now() / 1000).toFixed(3);

async function until<T>(what: string, get: () => T, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('healthcheck: starting, unhealthy after Retries failures, healthy after a success; ps, inspect, events', async () => {
  const { krd, img } = f;
  const since = stamp();
  // the image's test with the request's interval and retries
  const run = krd.docker(['run', '-d', '--name', 'hc', '--health-interval', '200ms', '--health-retries', '2', img, 'sleep', '300']);
  assert.equal(run.code, 0, run.stderr);
  const status = () => krd.docker(['inspect', '-f', '{{.State.Health.Status}}', 'hc']).stdout.trim();
  assert.match(krd.docker(['ps', '--filter', 'name=hc', '--format', '{{.Status}}']).stdout, /^Up .* \(health: starting\)$/m);
  await until('unhealthy', status, (s) => s === 'unhealthy');
  const sick = JSON.parse(krd.docker(['inspect', '-f', '{{json .State.Health}}', 'hc']).stdout);
  assert.ok(sick.FailingStreak >= 2);
  assert.equal(sick.Log.at(-1).ExitCode, 1);
  assert.ok(Date.parse(sick.Log.at(-1).End) >= Date.parse(sick.Log.at(-1).Start));
  assert.equal(krd.docker(['exec', 'hc', 'sh', '-c', ': > /tmp/ok']).code, 0);
  await until('healthy', status, (s) => s === 'healthy');
  assert.match(krd.docker(['ps', '--filter', 'name=hc', '--format', '{{.Status}}']).stdout, /^Up .* \(healthy\)$/m);
  assert.equal(krd.docker(['ps', '--filter', 'health=healthy', '--format', '{{.Names}}']).stdout.trim(), 'hc');
  assert.equal(krd.docker(['ps', '--filter', 'health=unhealthy', '-q']).stdout.trim(), '');
  const healthy = JSON.parse(krd.docker(['inspect', '-f', '{{json .State.Health}}', 'hc']).stdout);
  assert.equal(healthy.FailingStreak, 0);
  assert.ok(healthy.Log.length <= 5);
  const ev = krd.docker(['events', '--since', since, '--until', stamp(), '--filter', 'container=hc', '--filter', 'event=health_status', '--format', '{{.Action}}']);
  assert.deepEqual(ev.stdout.trim().split('\n'), ['health_status: unhealthy', 'health_status: healthy']);
  // probes stop with the container
  assert.equal(krd.docker(['stop', '-t', '0', 'hc']).code, 0);
  const logs = () => JSON.parse(krd.docker(['inspect', '-f', '{{json .State.Health.Log}}', 'hc']).stdout).map((l: { Start: string }) => l.Start).join();
  const before = logs();
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(logs(), before);
});

test('healthcheck: a probe over its timeout fails with -1; --no-healthcheck turns the image check off', async () => {
  const { krd, img } = f;
  const run = krd.docker(['run', '-d', '--name', 'slow', '--health-cmd', 'sleep 5', '--health-timeout', '300ms', '--health-interval', '100ms', '--health-retries', '1', img, 'sleep', '300']);
  assert.equal(run.code, 0, run.stderr);
  const h = await until('unhealthy', () => JSON.parse(krd.docker(['inspect', '-f', '{{json .State.Health}}', 'slow']).stdout), (v) => v?.Status === 'unhealthy');
  assert.equal(h.Log.at(-1).ExitCode, -1);
  assert.equal(h.Log.at(-1).Output, 'Health check exceeded timeout (300ms)');
  const off = krd.docker(['run', '-d', '--name', 'nohc', '--no-healthcheck', img, 'sleep', '300']);
  assert.equal(off.code, 0, off.stderr);
  assert.equal(krd.docker(['inspect', '-f', '{{.State.Health}}', 'nohc']).stdout.trim(), '<nil>');
  assert.deepEqual(JSON.parse(krd.docker(['inspect', '-f', '{{json .Config.Healthcheck.Test}}', 'nohc']).stdout), ['NONE']);
  assert.match(krd.docker(['ps', '--filter', 'name=nohc', '--format', '{{.Status}}']).stdout, /^Up [^(]*$/m);
  assert.match(krd.docker(['ps', '--filter', 'health=none', '--format', '{{.Names}}']).stdout, /nohc/);
  const bad = krd.docker(['run', '-d', '--health-cmd', 'true', '--health-interval', '1us', img, 'true']);
  assert.notEqual(bad.code, 0);
});
