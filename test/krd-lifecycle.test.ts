// krd container lifecycle with the real docker 28 CLI: events, start again, restart policies,
// pause/unpause, rename, prune, detach keys, HostConfig limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startKrdWithImage, stopKrdFixture, type KrdFixture } from './kit/krd-image.ts';

let f: KrdFixture;

before(async () => {
  f = await startKrdWithImage('kraud-krd-life-', { Cmd: ['sh'], Labels: { 'org.example.kit': 'life' } });
  // pull once, so the tests below run concurrently against a present image
  assert.equal(f.krd.docker(['pull', '-q', f.img]).code, 0);
});

after(() => stopKrdFixture(f ?? {}));

const stamp = () => (Date.now() / 1000).toFixed(3);

test('docker events: since/until replay with filters, live stream, image events', async () => {
  const { krd, img } = f;
  const since = stamp();
  const run = krd.docker(['run', '--name', 'ev1', '-l', 'ev=yes', img, 'sh', '-c', 'exit 3']);
  assert.equal(run.code, 3, run.stderr);
  assert.equal(krd.docker(['rm', 'ev1']).code, 0);
  assert.equal(krd.docker(['tag', img, 'evtag:one']).code, 0);
  const until = stamp();
  const replay = krd.docker(['events', '--since', since, '--until', until, '--filter', 'container=ev1', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "exitCode"}}']);
  assert.equal(replay.code, 0, replay.stderr);
  assert.deepEqual(replay.stdout.trim().split('\n').map((l) => l.trimEnd()), ['container create ev1', 'container attach ev1', 'container start ev1', 'container die ev1 3', 'container destroy ev1']);
  const byLabel = krd.docker(['events', '--since', since, '--until', until, '--filter', 'label=ev=yes', '--filter', 'event=die', '--format', '{{.Action}}']);
  assert.equal(byLabel.stdout.trim(), 'die');
  const images = krd.docker(['events', '--since', since, '--until', until, '--filter', 'type=image', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
  assert.equal(images.stdout.trim(), 'tag evtag:one');
  // live: a subscriber sees a start as it happens
  const live = spawn('docker', ['events', '--filter', 'event=start', '--filter', 'container=ev2', '--format', '{{.Action}} {{.Actor.Attributes.name}}'], { env: krd.env });
  let out = '';
  live.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(krd.docker(['run', '-d', '--name', 'ev2', img, 'true']).code, 0);
  const deadline = Date.now() + 10_000;
  while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  live.kill();
  assert.equal(out.trim(), 'start ev2');
  assert.equal(krd.docker(['rm', '-f', 'ev2']).code, 0);
});
