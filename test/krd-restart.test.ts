// krd killed with SIGKILL and started again on the same socket and data root, with the real
// docker 28 CLI: a container that ran through it is still up, `docker logs -f` started after the
// restart keeps receiving its new lines, an exec that was running when krd died gets its exit
// code recorded, and the container's healthcheck goes on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { startKrd } from './kit/krd.ts';
import { startKrdWithImage, stopKrdFixture, type KrdFixture } from './kit/krd-image.ts';

let f: KrdFixture;

before(async () => {
  f = await startKrdWithImage('kraud-krd-restart-', { Cmd: ['sh'] });
});

after(() => stopKrdFixture(f ?? {}));

function api(method: string, path: string, body?: object): Promise<{ status: number; json: Record<string, unknown> | null }> {
  return new Promise((resolve, reject) => {
    const data = body ? Buffer.from(JSON.stringify(body)) : undefined;
    const req = http.request({ socketPath: f.krd.socket, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text.trim() ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const lineNumbers = (text: string): number[] => [...text.matchAll(/^line (\d+)$/gm)].map((m) => Number(m[1]));

test('kill -9 of krd: the container keeps running, logs -f after the restart follows it, a running exec gets its exit code, health goes on', async () => {
  const { img } = f;
  const run = f.krd.docker(['run', '-d', '--name', 'ticker', '--health-cmd', 'true', '--health-interval', '200ms', img, 'sh', '-c', 'i=0; while :; do echo line $i; i=$((i+1)); sleep 0.1; done'], { timeout: 60_000 });
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  // an exec that outlives krd
  const made = await api('POST', '/containers/ticker/exec', { Cmd: ['sh', '-c', 'sleep 3; exit 7'] });
  assert.equal(made.status, 201);
  const execId = String(made.json!.Id);
  assert.equal((await api('POST', `/exec/${execId}/start`, { Detach: true })).status, 200);
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(f.krd.docker(['inspect', '-f', '{{.State.Health.Status}}', 'ticker']).stdout.trim(), 'healthy');
  const pidBefore = f.krd.docker(['inspect', '-f', '{{.State.Pid}}', 'ticker']).stdout.trim();
  const lastBefore = Math.max(...lineNumbers(f.krd.docker(['logs', 'ticker']).stdout));

  await f.krd.kill9();
  const killedAt = Date.now();
  await new Promise((r) => setTimeout(r, 500)); // the container writes on while no krd runs
  f.krd = await startKrd({ socket: f.krd.socket, dataRoot: f.krd.dataRoot });

  const ps = f.krd.docker(['ps', '--filter', 'name=ticker', '--format', '{{.ID}} {{.Status}}']);
  assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} Up `), ps.stdout + ps.stderr);
  assert.equal(f.krd.docker(['inspect', '-f', '{{.State.Pid}}', 'ticker']).stdout.trim(), pidBefore);

  // logs -f: the lines written while krd was down, then new ones as they come
  const follow = spawn('docker', ['logs', '-f', 'ticker'], { env: f.krd.env });
  let out = '';
  follow.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => setTimeout(r, 700));
  const early = Math.max(...lineNumbers(out));
  await new Promise((r) => setTimeout(r, 800));
  const late = Math.max(...lineNumbers(out));
  follow.kill();
  const seen = lineNumbers(out);
  assert.ok(early > lastBefore + 3, `lines written while krd was down are there: ${lastBefore} → ${early}`);
  assert.ok(late >= early + 4, `new lines keep coming: ${early} → ${late}`);
  assert.deepEqual(seen, seen.map((_, i) => i), 'every line once, in order');

  // the exec ends after the restart: its exit code is recorded
  const deadline = Date.now() + 10_000;
  let ex = (await api('GET', `/exec/${execId}/json`)).json!;
  while (ex.Running !== false && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    ex = (await api('GET', `/exec/${execId}/json`)).json!;
  }
  assert.equal(ex.Running, false);
  assert.equal(ex.ExitCode, 7);

  // health probes resumed: results newer than the restart
  await new Promise((r) => setTimeout(r, 500));
  const log = JSON.parse(f.krd.docker(['inspect', '-f', '{{json .State.Health.Log}}', 'ticker']).stdout) as { Start: string; ExitCode: number }[];
  assert.ok(log.some((l) => Date.parse(l.Start) > killedAt && l.ExitCode === 0), JSON.stringify(log));
  assert.equal(f.krd.docker(['inspect', '-f', '{{.State.Health.Status}}', 'ticker']).stdout.trim(), 'healthy');
});
