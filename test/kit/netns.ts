// Network namespaces for tests (`ip netns add kraud-t-<random>`, lo up), so nothing a test's krd
// does to the network leaves them; `sh` runs a command inside one. Always removed in `after`.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

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
