import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer, connect } from 'node:net';
import { startProxy } from './port-proxy.ts';

test('tcp: a published port forwards both ways; port 0 gets a free one; a taken port is a conflict', async () => {
  const echo = createServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
  await new Promise((r) => echo.once('listening', r));
  const target = (echo.address() as { port: number }).port;
  const p = await startProxy({ proto: 'tcp', hostIp: '127.0.0.1', hostPort: 0, targetIp: '127.0.0.1', targetPort: target });
  assert.ok(p.port > 0 && p.port !== target);
  const got = await new Promise<string>((resolve) => {
    const c = connect(p.port, '127.0.0.1', () => c.end('ping'));
    let out = '';
    c.on('data', (d) => (out += d));
    c.on('close', () => resolve(out));
  });
  assert.equal(got, 'ping');
  await assert.rejects(startProxy({ proto: 'tcp', hostIp: '127.0.0.1', hostPort: p.port, targetIp: '127.0.0.1', targetPort: target }), { kind: 'conflict', message: /port is already allocated/ });
  p.close();
  echo.close();
});

test('udp: datagrams go to the container and answers come back to each client', async () => {
  const echo = createSocket('udp4');
  echo.on('message', (m, from) => echo.send(Buffer.concat([Buffer.from('re:'), m]), from.port, from.address));
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
  const p = await startProxy({ proto: 'udp', hostIp: '127.0.0.1', hostPort: 0, targetIp: '127.0.0.1', targetPort: echo.address().port });
  const ask = (text: string) =>
    new Promise<string>((resolve) => {
      const c = createSocket('udp4');
      c.on('message', (m) => {
        c.close();
        resolve(m.toString());
      });
      c.send(text, p.port, '127.0.0.1');
    });
  assert.deepEqual(await Promise.all([ask('a'), ask('b')]), ['re:a', 're:b']);
  p.close();
  echo.close();
});
