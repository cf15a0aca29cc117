// A krd for tests: node_modules/.bin/krd (the real executable, so its PID is krd's) on a temp
// unix socket and data root, ready once /_ping answers. `docker(...)` runs the real docker CLI
// against it with a private DOCKER_CONFIG.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const KRD_BIN = resolve(import.meta.dirname, '../../node_modules/.bin/krd');

export interface KrdOptions {
  /** Reuse a data root / socket (restart tests); fresh temp ones by default. */
  dataRoot?: string;
  socket?: string;
  /** More flags (e.g. -H tcp://…, --tlsverify …, --trusted-identity …). */
  args?: string[];
  /** Skip the default unix socket (a TCP-only krd). */
  noSocket?: boolean;
  /** Run krd inside this network namespace (a name under /run/netns, see kit/netns.ts). */
  netns?: string;
}

export interface TestKrd {
  socket: string;
  dataRoot: string;
  dockerConfig: string;
  child: ChildProcess;
  /** What krd wrote to stderr so far. */
  log(): string;
  /** Environment for the docker CLI. */
  env: NodeJS.ProcessEnv;
  docker(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeout?: number; input?: string }): { code: number; stdout: string; stderr: string };
  /** SIGKILL, wait for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM, wait for the exit, remove the temp dir unless keep. */
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
  // nsenter execs krd after setns (no fork), so the child's PID is still krd's
  const argv = opts.netns ? ['nsenter', `--net=/run/netns/${opts.netns}`, KRD_BIN, ...args] : [KRD_BIN, ...args];
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
    if (gone) throw new Error(`krd exited before it answered: ${log.trim()}`);
    if (opts.noSocket ? /listening on tcp/.test(log) : (await pingUnix(socket)) === 200) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`krd did not answer /_ping within 15 s: ${log.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    socket,
    dataRoot,
    dockerConfig,
    child,
    env,
    log: () => log,
    docker(dargs, o = {}) {
      const r = spawnSync('docker', dargs, { env: { ...env, ...o.env }, encoding: 'utf8', timeout: o.timeout ?? 30_000, input: o.input, killSignal: 'SIGKILL' });
      return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    async kill9() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
    async stop(keep = false) {
      if (!gone) child.kill('SIGTERM');
      await exited;
      if (!keep) await fsp.rm(work, { recursive: true, force: true });
    },
  };
}
