// docker exec through krd with the real docker CLI (client 28): output, exit codes, env/workdir/
// user, stdin with its half-close, a tty, -d, and docker's errors for stopped and unknown containers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestRegistry } from './kit/registry.ts';
import type { TestKrd } from './kit/krd.ts';
import { startKrdWithImage, stopKrdFixture } from './kit/krd-image.ts';

describe('krd exec with the docker CLI', () => {
  let work: string;
  let registry: TestRegistry;
  let krd: TestKrd;
  let img: string;

  before(async () => {
    ({ work, registry, img, krd } = await startKrdWithImage('kraud-krd-exec-', { Cmd: ['sh'] }));
    const run = krd.docker(['run', '-d', '--name', 'c1', '-e', 'BASE=b', img, 'sleep', '300'], { timeout: 60_000 });
    assert.equal(run.code, 0, run.stderr);
  });

  after(() => stopKrdFixture({ work, registry, img, krd }));

  test('docker exec prints the output; stderr stays apart', () => {
    const r = krd.docker(['exec', 'c1', 'echo', 'hi']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    const both = krd.docker(['exec', 'c1', 'sh', '-c', 'echo out; echo err >&2']);
    assert.equal(both.stdout, 'out\n', both.stderr);
    assert.equal(both.stderr, 'err\n');
  });

  test('the exit code comes back', () => {
    assert.equal(krd.docker(['exec', 'c1', 'sh', '-c', 'exit 5']).code, 5);
    assert.equal(krd.docker(['exec', 'c1', 'true']).code, 0);
  });

  test('-e, -w and -u apply; the container env stays', () => {
    const r = krd.docker(['exec', '-e', 'A=1', '-w', '/tmp', '-u', '1000', 'c1', 'sh', '-c', 'echo $A $BASE; pwd; id -u']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '1 b\n/tmp\n1000\n');
  });

  test('stdin reaches the exec and its end closes the exec stdin', () => {
    const r = krd.docker(['exec', '-i', 'c1', 'cat'], { input: 'data\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'data\n');
    const more = krd.docker(['exec', '-i', 'c1', 'sh', '-c', 'cat; echo done'], { input: 'a\nb\n' });
    assert.equal(more.stdout, 'a\nb\ndone\n', more.stderr);
  });

  test('a tty gives the raw stream; -d runs in the background', async () => {
    const t = krd.docker(['exec', '-t', 'c1', 'echo', 'hi']);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, 'hi\r\n');
    const d = krd.docker(['exec', '-d', 'c1', 'sh', '-c', 'echo bg > /tmp/bg']);
    assert.equal(d.code, 0, d.stderr);
    let seen = '';
    for (let i = 0; i < 100 && seen !== 'bg\n'; i++) {
      seen = krd.docker(['exec', 'c1', 'sh', '-c', 'cat /tmp/bg 2>/dev/null || true']).stdout;
      if (seen !== 'bg\n') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(seen, 'bg\n');
  });

  test("docker's errors: a stopped container, an unknown one", () => {
    const run = krd.docker(['run', '--name', 'c2', img, 'true']);
    assert.equal(run.code, 0, run.stderr);
    const id = krd.docker(['inspect', '--format', '{{.Id}}', 'c2']).stdout.trim();
    const stopped = krd.docker(['exec', 'c2', 'echo', 'hi']);
    assert.equal(stopped.code, 1);
    assert.equal(stopped.stderr.trim(), `Error response from daemon: container ${id} is not running`);
    const unknown = krd.docker(['exec', 'nope', 'echo', 'hi']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr.trim(), 'Error response from daemon: No such container: nope');
  });
});
