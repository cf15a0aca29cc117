// A krd for tests: node_modules/.bin/krd (the real executable, so its PID is krd's) on a temp
// unix socket and data root, ready once /_ping answers. `docker(...)` runs the real docker CLI
// against it with a private DOCKER_CONFIG. Every krd runs in a network namespace of its own by
// default, so the bridges, iptables rules and ip forwarding it sets up never reach the host
// (see kit/krd-netns.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { holdNetns, type HeldNetns } from './krd-netns.ts';

export const KRD_BIN = resolve(import.meta.dirname, '../../node_modules/.bin/krd');

export interface KrdOptions {
  /** Reuse a data root / socket (restart tests); fresh temp ones by default. */
  dataRoot?: string;
  socket?: string;
  /** More flags (e.g. -H tcp://…, --tlsverify …, --trusted-identity …). */
  args?: string[];
  /** Skip the default unix socket (a TCP-only krd). */
  noSocket?: boolean;
  /**
   * The network namespace krd runs in: by default a fresh kraud-t-* one, removed when krd stops
   * (a krd restarted on the same data root after a kill -9 joins its predecessor's, so what runs
   * there survives); a name under /run/netns (kit/netns.ts) the test owns; false for the host's.
   */
  netns?: string | false;
  /** Ports of the host's 127.0.0.1 (a test registry) that krd reaches at the same address. */
  loopbackPorts?: number[];
}

export interface TestKrd {
  socket: string;
  dataRoot: string;
  dockerConfig: string;
  /** The network namespace krd runs in (a name under /run/netns); undefined: the host's. */
  netns?: string;
  child: ChildProcess;
  /** What krd wrote to stderr so far. */
  log(): string;
  /** Environment for the docker CLI. */
  env: NodeJS.ProcessEnv;
  /** The docker CLI, run in krd's network namespace (so a -H tcp://127.0.0.1:… reaches krd). */
  docker(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeout?: number; input?: string }): { code: number; stdout: string; stderr: string };
  /** Makes the host's 127.0.0.1:port answer inside krd's namespace too (a registry started later). */
  reachLoopback(port: number): Promise<void>;
  /** SIGKILL, wait for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM, wait for the exit, remove the temp dir unless keep, and krd's namespace unless a restarted krd took it over. */
  stop(keep?: boolean): Promise<void>;
}

export function pingUnix(socket: string): Promise<number> {
  return new Promise((res) => {
    const req = http.request({ socketPath: socket, path: '/_ping', method: 'GET' }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode ?? 0));
    });
    req.on('error', () => res(0));
    req.setTimeout(2000, () => req.destroy());
    req.end();
  });
}

export async function startKrd(opts: KrdOptions = {}): Promise<TestKrd> {
  const work = await fsp.mkdtemp(join(tmpdir(), 'kraud-krd-'));
  const socket = opts.socket ?? join(work, 'krd.sock');
  const dataRoot = opts.dataRoot ?? join(work, 'data');
  const dockerConfig = join(work, 'docker-config');
  await fsp.mkdir(dockerConfig, { recursive: true });
  // the ns runtime unless a test asks for another: krd's default is vm where KVM is usable
  const runtime = opts.args?.includes('--runtime') ? [] : ['--runtime', 'ns'];
  const args = [...(opts.noSocket ? [] : ['-H', `unix://${socket}`]), '--data-root', dataRoot, ...runtime, ...(opts.args ?? [])];
  let held: HeldNetns | undefined;
  if (opts.netns !== false) {
    held = holdNetns(opts.netns ?? { dataRoot: resolve(dataRoot) });
    await held.forward(opts.loopbackPorts ?? []);
  }
  const inNetns = (argv: string[]) => (held ? ['nsenter', `--net=/run/netns/${held.name}`, ...argv] : argv);
  // nsenter execs krd after setns (no fork), so the child's PID is still krd's
  const argv = inNetns([KRD_BIN, ...args]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let gone = false;
  void exited.then(() => (gone = true));
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig };
  delete env.DOCKER_TLS_VERIFY;
  delete env.DOCKER_CERT_PATH;
  delete env.DOCKER_CONTEXT;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (gone) {
      held?.release();
      throw new Error(`krd exited before it answered: ${log.trim()}`);
    }
    if (opts.noSocket ? /listening on tcp/.test(log) : (await pingUnix(socket)) === 200) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      held?.release();
      throw new Error(`krd did not answer /_ping within 15 s: ${log.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    socket,
    dataRoot,
    dockerConfig,
    netns: held?.name,
    child,
    env,
    log: () => log,
    docker(dargs, o = {}) {
      const [cmd, ...rest] = inNetns(['docker', ...dargs]);
      const r = spawnSync(cmd, rest, { env: { ...env, ...o.env }, encoding: 'utf8', timeout: o.timeout ?? 30_000, input: o.input, killSignal: 'SIGKILL' });
      return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    async reachLoopback(port) {
      if (held) await held.forward([port]);
    },
    async kill9() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
    async stop(keep = false) {
      if (!gone) child.kill('SIGTERM');
      await exited;
      held?.release();
      if (!keep) await fsp.rm(work, { recursive: true, force: true });
    },
  };
}
