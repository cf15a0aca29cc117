// `bali build` glue: the builder mounts overlays, so it runs in a private mount namespace of its
// own (entered by execve, which keeps the PID; every mount vanishes with the process).
import fs from 'node:fs';
import path from 'node:path';
import { KrError } from '../util/errors.ts';
import { build, type BuildOptions } from '../build/builder.ts';
import { defaultCacheDir } from '../build/cache.ts';
import type { WrittenFile } from './sign.ts';
import { ENTER_HELPER } from './run/run.ts';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');

export function enterBuildNamespace(args: string[]): never {
  if (!fs.existsSync(ENTER_HELPER)) throw new KrError('not-found', `${ENTER_HELPER} is missing: run 'make' to build it`);
  if (process.getuid?.() !== 0) throw new KrError('denied', 'bali build needs root (overlay mounts and namespaces)');
  const self = [process.execPath, '--no-warnings', path.join(repoRoot, 'src', 'cli', 'bali.ts'), 'build', ...args];
  process.execve!(ENTER_HELPER, [ENTER_HELPER, 'unshare', '-', '--', ...self], { ...process.env, BALI_BUILD_NS: '1' });
  throw new KrError('io', 'execve returned');
}

export async function runBuild(opts: Omit<BuildOptions, 'cacheDir'> & { cacheDir?: string }): Promise<WrittenFile> {
  if (!fs.existsSync(opts.context) || !fs.statSync(opts.context).isDirectory()) throw new KrError('not-found', `build context ${opts.context} is not a directory`);
  const { file } = await build({ ...opts, cacheDir: opts.cacheDir ?? defaultCacheDir() });
  return file;
}
