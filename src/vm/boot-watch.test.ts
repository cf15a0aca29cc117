// The stall watch on real processes: a sleeping one (what qemu is with a halted guest) is reported,
// a busy one (a booting guest) is not, however loaded the machine is (time waiting for a CPU counts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { activeNanos, watchForStall } from './boot-watch.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('watchForStall reports an idle process once, not a busy one', async () => {
  const idle = spawn('sleep', ['60']);
  const busy = spawn('sh', ['-c', 'while :; do :; done']);
  const idleGone = new Promise((r) => idle.once('exit', r));
  try {
    await Promise.all([idle, busy].map((p) => new Promise((r) => p.once('spawn', r))));
    const stalls: string[] = [];
    const o = { idleMs: 1500, everyMs: 250 };
    const stopIdle = watchForStall(idle.pid!, (ms) => stalls.push(`idle after ${ms} ms`), o);
    const stopBusy = watchForStall(busy.pid!, () => stalls.push('busy'), o);
    await sleep(3500);
    stopIdle();
    stopBusy();
    assert.equal(stalls.length, 1, stalls.join(', '));
    assert.match(stalls[0], /^idle after \d+ ms$/);
    assert.ok(Number(/\d+/.exec(stalls[0])![0]) >= 1500);
  } finally {
    idle.kill('SIGKILL');
    busy.kill('SIGKILL');
  }
  await idleGone;
  assert.equal(activeNanos(idle.pid!), null, 'a process that is gone has no activity');
});
