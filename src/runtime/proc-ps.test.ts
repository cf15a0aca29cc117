// ps's -ef and aux from /proc (what docker top uses in a pod VM's guest, which has no ps) against
// the host's real procps, over the same processes, through the same docker top rules (top.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { procPs } from './proc-ps.ts';
import { parsePs } from './top.ts';

const realPs = (args: string[], pids: number[]) => execFileSync('ps', [...args, '-q', pids.join(',')], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });

test('-ef and aux from /proc: the titles and cells real ps shows for the same pids', async (t) => {
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => sleeper.kill('SIGKILL'));
  await new Promise((r) => sleeper.once('spawn', r));
  await new Promise((r) => setTimeout(r, 100)); // past the exec
  const pids = [sleeper.pid!, process.pid];
  const want = new Set(pids);
  for (const args of [['-ef'], ['aux']]) {
    const real = parsePs(realPs(args, pids), want);
    const ours = parsePs(await procPs(args, pids), want);
    assert.deepEqual(ours.titles, real.titles, args.join(' '));
    assert.equal(ours.processes.length, 2);
    // what changes by the moment of reading (cpu share, memory, state, cpu time) is left out
    const volatile = args[0] === '-ef' ? ['C', 'TIME'] : ['%CPU', '%MEM', 'VSZ', 'RSS', 'STAT', 'TIME'];
    const stable = (rows: string[][]) => rows.map((r) => r.filter((_, i) => !volatile.includes(real.titles[i])));
    assert.deepEqual(stable(ours.processes), stable(real.processes), args.join(' '));
  }
  assert.match((await procPs(['-ef'], [sleeper.pid!])).split('\n')[1], / sleep 30$/);
});

test('other ps arguments are refused with one line (there is no ps to run them)', async () => {
  await assert.rejects(procPs(['-o', 'pid'], [process.pid]), { kind: 'invalid', message: /only its -ef and aux forms/ });
});
