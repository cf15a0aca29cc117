// The vm runtime treats its guest as hostile: a fake vdocker on loopback answers krd's calls with
// garbage — oversized bodies, wrong JSON, silence, lying frames, a forged path stat — and every
// call must end in a one-line 'unavailable' error (or a cut stream) within its deadline, with krd's
// process unharmed. The pod's "qemu" is a sleeping process whose command line names the pod dir,
// as the runtime checks before it trusts a pid.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmRuntime } from '../src/runtime/vm/vm-runtime.ts';
import type { Container } from '../src/runtime/runtime.ts';

const SECRET = 's'.repeat(64);

describe('vm runtime against a hostile guest', () => {
  let work: string;
  let server: http.Server;
  let fakeQemu: ChildProcess;
  let c: Container;
  let mode = '';

  before(async () => {
    work = await fsp.mkdtemp(join(tmpdir(), 'kraud-vm-hostile-'));
    const dir = join(work, 'pods', 'pod1');
    await fsp.mkdir(dir, { recursive: true });
    server = http.createServer((req, res) => {
      if (req.headers.authorization !== `Bearer ${SECRET}`) return void res.writeHead(401).end();
      if (mode === 'silent') return; // never answers
      if (mode === 'huge') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let n = 0;
        const more = () => {
          while (n++ < 64) if (!res.write(chunk)) return void res.once('drain', more);
          res.end('{}');
        };
        return more();
      }
      if (mode === 'not-json') return void res.writeHead(200).end('<html>');
      if (mode === 'wrong-shape') return void res.writeHead(200).end(JSON.stringify({ State: { Status: 'running', Pid: 'one', ExitCode: 0 }, Titles: 5 }));
      if (mode === 'lying-frames') {
        res.writeHead(200, { 'Content-Type': 'application/vnd.docker.multiplexed-stream' });
        const ok = Buffer.from('2026-01-01T00:00:00.000000001Z hello\n');
        const h = Buffer.alloc(8);
        h[0] = 1;
        h.writeUInt32BE(ok.length, 4);
        const bad = Buffer.alloc(8);
        bad[0] = 1;
        bad.writeUInt32BE(0x7fffffff, 4); // claims 2 GiB
        return void res.end(Buffer.concat([h, ok, bad, Buffer.alloc(100)]));
      }
      if (mode === 'forged-stat') return void res.writeHead(200, { 'X-Docker-Container-Path-Stat': Buffer.from('{"name":1}').toString('base64') }).end();
      if (mode === 'error-text') return void res.writeHead(409, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'x'.repeat(5000) }));
      res.writeHead(500).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    // a stand-in for the pod's qemu: alive, and its command line names the pod dir
    fakeQemu = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', dir], { stdio: 'ignore' });
    await new Promise((r) => fakeQemu.once('spawn', r));
    await fsp.writeFile(join(dir, 'pod.json'), JSON.stringify({ id: 'pod1', secret: SECRET, port, pid: fakeQemu.pid, accel: 'tcg', deadlineMs: 1500 }));
    await fsp.writeFile(join(dir, 'container.json'), JSON.stringify({ tty: false, openStdin: false }));
    c = await new VmRuntime(work, { accel: 'tcg' }).reattach('pod1');
  });

  after(async () => {
    fakeQemu?.kill('SIGKILL');
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server?.closeAllConnections();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  const refused = async (p: Promise<unknown>, pattern: RegExp) => {
    const t0 = Date.now();
    await assert.rejects(p, (err: Error & { kind?: string }) => {
      assert.ok(['unavailable', 'conflict'].includes(err.kind ?? ''), `kind ${err.kind}: ${err.message}`);
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes('\n'), 'one line');
      assert.ok(err.message.length < 1200, 'bounded message');
      return true;
    });
    assert.ok(Date.now() - t0 < 5000, 'within its deadline');
  };

  test('an answer larger than 1 MiB is cut off', async () => {
    mode = 'huge';
    await refused(c.state(), /larger than 1048576 bytes/);
  });

  test('not JSON, or JSON of the wrong shape', async () => {
    mode = 'not-json';
    await refused(c.state(), /not JSON/);
    mode = 'wrong-shape';
    await refused(c.state(), /unexpected answer \(status\)/);
    await refused(c.top([]), /unexpected answer/);
  });

  test('silence: the call times out', async () => {
    mode = 'silent';
    await refused(c.state(), /no answer .* within 1.5 s/);
  });

  test('a frame that lies about its length ends the log stream; what came before is kept', async () => {
    mode = 'lying-frames';
    const got: string[] = [];
    for await (const e of c.logs()) got.push(`${e.stream} ${e.time.toISOString()} ${e.nanos} ${e.data.toString()}`);
    assert.deepEqual(got, ['stdout 2026-01-01T00:00:00.000Z 1 hello\n']);
  });

  test('a forged path stat is refused; a long error message is cut', async () => {
    mode = 'forged-stat';
    await refused(c.statPath('/etc'), /malformed path stat/);
    mode = 'error-text';
    await refused(c.kill('SIGTERM'), /^x+$/);
  });
});
