// krd against `crun run` of the same rootfs, side by side in one run (issue 5's goals):
// - `docker run --rm --network none IMG /bin/true` through krd: ≤ 2.0× crun run. The docker CLI
//   (a Go binary) pays its own start on every command, so that is measured alongside
//   (`docker --version`), and so is the same `docker run` against a daemon that answers at once
//   and runs nothing (./instant-daemon.ts): the CLI's own floor, which no daemon can go below;
//   krd's share is the difference. With the default network as well
//   when krd has one (GET /networks lists "bridge"): that krd runs in a network namespace the
//   bench makes (kraud-t-<random>, removed at the end), so its bridge and veths stay there.
// - create+start+exit through the Engine API (no CLI, keep-alive connection, --network none):
//   ≤ 1.2× crun run.
// - first log byte after start (logs?follow=1, and attach): ≤ 20 ms, median.
// - 50 concurrent `docker run -d` (sleep), then `docker ps` / `ps -a` with 200 containers: times,
//   failures counted and printed.
// KRD_BENCH_RUNS sets the runs of each side of the fast rows (default 15).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startKrdWithImage, stopKrdFixture, type KrdFixture } from '../test/kit/krd-image.ts';
import { startKrd, type TestKrd } from '../test/kit/krd.ts';
import { alternate, median, type Row } from './lib.ts';
import { Api, CrunRunner, pool, spawnResult } from './krd-kit.ts';
import { startInstantDaemon } from './instant-daemon.ts';

const ms = (s: number): string => `${(s * 1000).toFixed(1)} ms`;

/** A crun bundle of the rootfs krd extracted for the image, running /bin/true without a terminal. */
function crunBundle(f: KrdFixture, work: string): string {
  const cache = path.join(f.krd.dataRoot, 'runtime', 'rootfs');
  const digests = fs.readdirSync(cache).filter((d) => !d.startsWith('.'));
  if (digests.length !== 1) throw new Error(`expected one cached rootfs in ${cache}, found ${digests.join(', ')}`);
  const bundle = fs.mkdtempSync(path.join(work, 'crun-bundle-'));
  const cp = spawnSync('cp', ['-a', path.join(cache, digests[0]), path.join(bundle, 'rootfs')]);
  if (cp.status !== 0) throw new Error(`copying the rootfs failed: ${cp.stderr}`);
  const spec = spawnSync('crun', ['spec'], { cwd: bundle });
  if (spec.status !== 0) throw new Error(`crun spec failed: ${spec.stderr}`);
  const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
  config.process.args = ['/bin/true'];
  config.process.terminal = false;
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config));
  return bundle;
}

export async function benchKrd(work: string): Promise<Row[]> {
  const f = await startKrdWithImage('kraud-bench-krd-', { Cmd: ['sh'] });
  const runner: Extras = {};
  const api = new Api(f.krd.socket);
  try {
    return await measure(f, work, api, runner);
  } finally {
    runner.crun?.close();
    await runner.instant?.close();
    api.close();
    if (runner.netKrd) {
      for (const id of runner.netKrd.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean)) runner.netKrd.docker(['rm', '-f', id]);
      await runner.netKrd.stop();
    }
    await stopKrdFixture(f);
  }
}

interface Extras {
  crun?: CrunRunner;
  instant?: { close(): Promise<void> };
  netKrd?: TestKrd;
}

/** A second krd (in its own network namespace, as every test krd) with the image loaded, when krd has a default bridge. */
async function bridgedKrd(f: KrdFixture, api: Api, extras: Extras): Promise<TestKrd | undefined> {
  const nets = await api.call('GET', '/networks');
  if (nets.status !== 200 || !/"Name":"bridge"/.test(nets.body)) return undefined;
  const archive = path.join(f.work, 'image.tar');
  const saved = f.krd.docker(['save', '-o', archive, f.img], { timeout: 60_000 });
  if (saved.code !== 0) throw new Error(`docker save failed: ${saved.stderr}`);
  const krd = (extras.netKrd = await startKrd({ socket: path.join(f.work, 'krd-net.sock'), dataRoot: path.join(f.work, 'data-net') }));
  const loaded = krd.docker(['load', '-i', archive], { timeout: 60_000 });
  if (loaded.code !== 0) throw new Error(`docker load failed: ${loaded.stderr}`);
  const first = krd.docker(['run', '--rm', f.img, '/bin/true']);
  if (first.code !== 0) throw new Error(`docker run (default network) failed: ${first.stderr}`);
  return krd;
}

async function measure(f: KrdFixture, work: string, api: Api, runner: Extras): Promise<Row[]> {
  const { img, krd } = f;
  const env = krd.env;
  const pull = krd.docker(['pull', img], { timeout: 120_000 });
  if (pull.code !== 0) throw new Error(`docker pull failed: ${pull.stderr}`);
  const first = krd.docker(['run', '--rm', '--network', 'none', img, '/bin/true']); // extracts the rootfs once
  if (first.code !== 0) throw new Error(`docker run failed: ${first.stderr}`);
  const crunRoot = fs.mkdtempSync(path.join(work, 'crun-state-'));
  const crun = (runner.crun = new CrunRunner(crunBundle(f, work), crunRoot));
  await crun.run();

  const runs = Number(process.env.KRD_BENCH_RUNS ?? 15);
  const docker = async (args: string[]) => {
    const r = await spawnResult('docker', args, env);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  };
  const netKrd = await bridgedKrd(f, api, runner);
  const instant = (runner.instant = await startInstantDaemon(path.join(f.work, 'instant.sock')));
  const instantEnv = { ...env, DOCKER_HOST: `unix://${instant.socket}` };
  const hasBridge = !!netKrd;

  // create → wait(next-exit) registered → start → exit seen: what `crun run` does, less the
  // deletion, which follows untimed (its median is reported in the note).
  const deletes: number[] = [];
  const apiRun = async (): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const { Id } = await api.ok<{ Id: string }>('POST', '/containers/create', { Image: img, Cmd: ['/bin/true'], HostConfig: { NetworkMode: 'none' } });
    const { exited } = await api.waitFor(Id);
    await api.ok('POST', `/containers/${Id}/start`);
    await exited;
    const t1 = process.hrtime.bigint();
    await api.ok('DELETE', `/containers/${Id}`);
    deletes.push(Number(process.hrtime.bigint() - t1) / 1e9);
    return Number(t1 - t0) / 1e9;
  };
  // the same, up to the start call's answer (the container is running)
  const apiStart = async (): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const { Id } = await api.ok<{ Id: string }>('POST', '/containers/create', { Image: img, Cmd: ['/bin/true'], HostConfig: { NetworkMode: 'none' } });
    await api.ok('POST', `/containers/${Id}/start`);
    const t1 = process.hrtime.bigint();
    await api.ok('POST', `/containers/${Id}/wait?condition=not-running`);
    await api.ok('DELETE', `/containers/${Id}`);
    return Number(t1 - t0) / 1e9;
  };
  // what the docker CLI asks for in `docker run --rm` (after its /_ping), without the CLI
  const cliReplica = async () => {
    const { Id } = await api.ok<{ Id: string }>('POST', '/containers/create', { Image: img, Cmd: ['/bin/true'], HostConfig: { NetworkMode: 'none', AutoRemove: true } });
    const stream = await api.openStream(Id, 'attach');
    const { exited } = await api.waitFor(Id, 'removed');
    await api.ok('POST', `/containers/${Id}/start`);
    await Promise.all([stream.ended, exited]);
    stream.close();
  };
  await apiRun();
  await cliReplica();
  const contenders: Record<string, () => Promise<number | void>> = {
    crun: () => crun.run(),
    cliNone: () => docker(['run', '--rm', '--network', 'none', img, '/bin/true']),
    cliStart: () => docker(['--version']),
    cliFloor: async () => {
      const r = await spawnResult('docker', ['run', '--rm', '--network', 'none', img, '/bin/true'], instantEnv);
      if (r.code !== 0) throw new Error(`docker run against the instant daemon exited ${r.code}: ${r.stderr}`);
    },
    apiRun,
    apiStart,
    cliReplica,
  };
  if (netKrd) {
    contenders.cliBridge = async () => {
      const r = await spawnResult('docker', ['run', '--rm', img, '/bin/true'], netKrd.env);
      if (r.code !== 0) throw new Error(`docker run (default network) exited ${r.code}: ${r.stderr}`);
    };
  }
  process.stderr.write(`bench: krd run (${runs} rounds of ${Object.keys(contenders).join(', ')})...\n`);
  const t = await alternate(runs, contenders);
  const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)])) as Record<string, number>;
  // per-round differences, so what the CLI costs is subtracted as measured next to each run
  const lessStart = median(t.cliNone.map((v, i) => v - t.cliStart[i]));
  const krdShare = median(t.cliNone.map((v, i) => v - t.cliFloor[i]));
  const crunName = 'crun run (same rootfs, new netns)';
  const rows: Row[] = [
    { name: `docker run --rm --network none IMG /bin/true via krd (${runs} runs)`, ours: m.cliNone, baseline: m.crun, baselineName: crunName, goal: '≤ 2.0× time', note: `docker CLI's own start (docker --version): ${ms(m.cliStart)}; less that, per round: ${ms(lessStart)}` },
    { name: 'the same docker run against a daemon that answers at once and runs nothing (the docker CLI\'s floor)', ours: m.cliFloor, baseline: m.crun, baselineName: crunName, goal: 'report' },
    { name: 'krd\'s share: the krd run less that floor (per-round difference)', ours: krdShare, baseline: m.crun, baselineName: crunName, goal: 'report' },
    { name: 'the CLI\'s requests for it without the CLI (create AutoRemove, attach, wait removed, start)', ours: m.cliReplica, baseline: m.crun, baselineName: crunName, goal: 'report' },
  ];
  if (hasBridge) rows.push({ name: `docker run --rm IMG /bin/true via krd, default network (${runs} runs; krd in its own netns)`, ours: m.cliBridge, baseline: m.crun, baselineName: crunName, goal: 'report' });
  else process.stderr.write('bench: krd has no default bridge network yet: default-network row skipped\n');
  rows.push(
    { name: `API create+start+exit, --network none, no CLI (${runs} runs)`, ours: m.apiRun, baseline: m.crun, baselineName: crunName, goal: '≤ 1.2× time', note: `then DELETE: ${ms(median(deletes))} (untimed)` },
    { name: 'API create+start (until start answers), no CLI', ours: m.apiStart, baseline: m.crun, baselineName: crunName, goal: 'report' },
  );

  // first output byte: a container that prints at once; the stream is open before start
  const firstByte = async (how: 'logs' | 'attach'): Promise<number> => {
    const { Id } = await api.ok<{ Id: string }>('POST', '/containers/create', { Image: img, Cmd: ['echo', 'hi'], HostConfig: { NetworkMode: 'none' } });
    const stream = await api.openStream(Id, how);
    try {
      const t0 = process.hrtime.bigint();
      await api.ok('POST', `/containers/${Id}/start`);
      return Number((await stream.first) - t0) / 1e9;
    } finally {
      stream.close();
      await api.ok('POST', `/containers/${Id}/wait?condition=not-running`);
      await api.ok('DELETE', `/containers/${Id}`);
    }
  };
  process.stderr.write('bench: krd first log byte...\n');
  const fb = await alternate(runs, { logs: () => firstByte('logs'), attach: () => firstByte('attach') });
  rows.push(
    { name: `first byte of logs?follow=1 after the start call (${runs} runs)`, ours: median(fb.logs), baselineName: '', goal: '≤ 20 ms (median)', note: `min ${ms(Math.min(...fb.logs))}, max ${ms(Math.max(...fb.logs))}` },
    { name: 'first byte of attach after the start call', ours: median(fb.attach), baselineName: '', goal: 'report', note: `min ${ms(Math.min(...fb.attach))}, max ${ms(Math.max(...fb.attach))}` },
  );

  rows.push(...(await many(f, api)));
  return rows;
}

/** 50 concurrent `docker run -d`, 150 more created, `docker ps` timings with 200 containers. */
async function many(f: KrdFixture, api: Api): Promise<Row[]> {
  const { img, krd } = f;
  process.stderr.write('bench: krd 50 concurrent docker run -d...\n');
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(Array.from({ length: 50 }, () => spawnResult('docker', ['run', '-d', '--network', 'none', img, 'sleep', '1000'], krd.env)));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const failed = results.filter((r) => r.code !== 0);
  for (const r of failed) process.stderr.write(`bench: docker run -d failed (${r.code}): ${r.stderr}\n`);
  await pool(Array.from({ length: 150 }, (_, i) => i), 8, () =>
    api.ok<{ Id: string }>('POST', '/containers/create', { Image: img, Cmd: ['sleep', '1000'], HostConfig: { NetworkMode: 'none' } }),
  );
  const count = JSON.parse((await api.call('GET', '/containers/json?all=1')).body).length;
  const running = JSON.parse((await api.call('GET', '/containers/json')).body).length;
  process.stderr.write(`bench: krd ps (${count} containers, ${running} running)...\n`);
  const docker = async (args: string[]) => {
    const r = await spawnResult('docker', args, krd.env);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  };
  const t = await alternate(9, {
    ps: () => docker(['ps']),
    psAll: () => docker(['ps', '-a']),
    apiAll: () => api.ok('GET', '/containers/json?all=1').then(() => undefined),
    cliStart: () => docker(['--version']),
  });
  const cli = median(t.cliStart);
  const cliName = 'docker --version (CLI start)';
  const rows: Row[] = [
    {
      name: `50 concurrent docker run -d (sleep): wall time of all, ${failed.length} failed`,
      ours: wall,
      baseline: cli,
      baselineName: cliName,
      goal: 'report; none fail',
      note: `per command: median ${ms(median(results.map((r) => r.seconds)))}, max ${ms(Math.max(...results.map((r) => r.seconds)))}`,
    },
    { name: `docker ps (${running} running of ${count})`, ours: median(t.ps), baseline: cli, baselineName: cliName, goal: 'report' },
    { name: `docker ps -a (${count} containers)`, ours: median(t.psAll), baseline: cli, baselineName: cliName, goal: 'report' },
    { name: `GET /containers/json?all=1 (${count}), no CLI`, ours: median(t.apiAll), baselineName: '', goal: 'report' },
  ];
  process.stderr.write('bench: krd removing the containers...\n');
  const all = JSON.parse((await api.call('GET', '/containers/json?all=1')).body) as { Id: string }[];
  await pool(all.map((c) => c.Id), 8, (id) => api.call('DELETE', `/containers/${id}?force=1`));
  return rows;
}
