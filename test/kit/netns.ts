// Network namespaces for tests (`ip netns add kraud-t-<random>`, lo up), so nothing a test's krd
// does to the network leaves them; `sh` runs a command inside one. Always removed in `after`.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TestNetns {
  name: string;
  path: string;
  /** Runs argv inside the namespace. */
  run(argv: string[], opts?: { timeout?: number; input?: string }): { code: number; stdout: string; stderr: string };
  remove(): void;
}

function must(argv: string[]): void {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim()}`);
}

export function createTestNetns(): TestNetns {
  const name = `kraud-t-${randomBytes(4).toString('hex')}`;
  must(['ip', 'netns', 'add', name]);
  must(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name,
    path: `/run/netns/${name}`,
    run(argv, opts = {}) {
      const r = spawnSync('ip', ['netns', 'exec', name, ...argv], { encoding: 'utf8', timeout: opts.timeout ?? 20_000, input: opts.input });
      return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    remove() {
      spawnSync('ip', ['netns', 'del', name]);
    },
  };
}

/** The address of the "internet" that fakeInternet() makes. */
export const INET_IP = '198.51.100.1';

export interface FakeInternet {
  ns: TestNetns;
  /** The veth in the test's namespace that leads there. */
  uplink: string;
  /** Stops the web server and removes the namespace. */
  remove(): void;
}

/**
 * A second namespace playing "the internet" for `ns`: a veth between them, `ns`'s default route
 * through it, and busybox httpd on INET_IP:8000 serving /hello.txt ("hello from the internet\n")
 * out of `dir`/www.
 */
export async function fakeInternet(ns: TestNetns, dir: string): Promise<FakeInternet> {
  const inet = createTestNetns();
  const uplink = `kt${ns.name.slice(-6)}`;
  for (const argv of [
    ['ip', '-n', ns.name, 'link', 'add', uplink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', inet.name],
    ['ip', '-n', ns.name, 'addr', 'add', '198.51.100.2/24', 'dev', uplink],
    ['ip', '-n', ns.name, 'link', 'set', uplink, 'up'],
    ['ip', '-n', ns.name, 'route', 'add', 'default', 'via', INET_IP],
    ['ip', '-n', inet.name, 'addr', 'add', `${INET_IP}/24`, 'dev', 'eth0'],
    ['ip', '-n', inet.name, 'link', 'set', 'eth0', 'up'],
  ]) {
    const r = ns.run(argv);
    if (r.code !== 0) {
      inet.remove();
      throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    }
  }
  const www = join(dir, 'www');
  await mkdir(www, { recursive: true });
  await writeFile(join(www, 'hello.txt'), 'hello from the internet\n');
  const web = spawn('ip', ['netns', 'exec', inet.name, 'busybox', 'httpd', '-f', '-p', '8000', '-h', www], { stdio: 'ignore' });
  return {
    ns: inet,
    uplink,
    remove() {
      web.kill('SIGKILL');
      inet.remove();
    },
  };
}
