// The tools disk (virtio-blk serial "kraud-tools", erofs, mounted by the guest's init at
// /run/cradle/tools): what vdocker needs inside a pod VM, which the initramfs lacks — the pinned
// node binary with the shared libraries it links (the initramfs has no libc), and kraud's own
// code with its types stripped here, as .js: node's own stripping loads a WebAssembly compiler
// (amaro) that took ≈ 5 s of vdocker's start in a TCG guest. Made once per content digest (node + libs + src) and
// cached; mkfs.erofs gets fixed time stamps and UUID, so equal inputs give equal bytes.
// Why node in the guest rather than a C vdocker: vdocker is krd's own route/service code (one copy
// of docker's behaviour); it starts after the containers, so its start-up is not on the path to
// the container's first output (see the README's cradle section for what it costs).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { stripTypeScriptTypes } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KrError } from '../../util/errors.ts';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const NODE_BIN = join(REPO, 'node_modules/node/bin/node');
const TINI = '/usr/bin/tini-static';
const SPAWNER = join(REPO, 'build/krd-spawner');

/** Where the tools disk is mounted in the guest (cradle-init's layout). */
export const GUEST_TOOLS = '/run/cradle/tools';

/** vdocker's command line inside the guest: the loader runs node, so no library path is baked in. */
export function vdockerArgv(): string[] {
  return [`${GUEST_TOOLS}/lib/ld-linux-x86-64.so.2`, '--library-path', `${GUEST_TOOLS}/lib`, `${GUEST_TOOLS}/bin/node`, '--no-warnings', `${GUEST_TOOLS}/app/src/guest/vdocker/main.js`];
}

/** The shared libraries node loads, as `ldd` resolves them on this host. */
async function nodeLibraries(): Promise<string[]> {
  const { stdout } = await run('ldd', [NODE_BIN]);
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  if (!libs.some((l) => basename(l).startsWith('ld-linux'))) throw new KrError('unavailable', `ldd ${NODE_BIN}: no dynamic loader found`);
  return libs.sort();
}

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) yield p;
  }
}

/** A module as JavaScript: types stripped (positions kept), relative `.ts` specifiers made `.js`. */
export function toJavaScript(ts: string): string {
  return stripTypeScriptTypes(ts, { mode: 'strip' }).replace(/(['"])(\.{1,2}\/[^'"\n]*?)\.ts\1/g, '$1$2.js$1');
}

async function hashFile(h: ReturnType<typeof createHash>, file: string): Promise<void> {
  h.update(`${file}\0${(await stat(file)).size}\0`);
  for await (const c of createReadStream(file)) h.update(c as Buffer);
}

/** The disk for the current node and code: <cacheDir>/tools-<digest>.erofs, made when missing. */
export async function toolsDisk(cacheDir: string): Promise<string> {
  const libs = await nodeLibraries();
  const sources: string[] = [];
  for await (const f of tsFiles(join(REPO, 'src'))) sources.push(f);
  const h = createHash('sha256');
  h.update('types stripped, .js\0'); // how the sources are laid out on the disk
  for (const f of [NODE_BIN, ...libs, ...(existsSync(TINI) ? [TINI] : []), SPAWNER, join(REPO, 'package.json'), ...sources]) await hashFile(h, f);
  const digest = h.digest('hex');
  const out = join(cacheDir, `tools-${digest.slice(0, 32)}.erofs`);
  if (existsSync(out)) return out;
  await mkdir(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `.tmp-tools-${randomBytes(6).toString('hex')}`);
  try {
    const tree = join(tmp, 'tree');
    await mkdir(join(tree, 'bin'), { recursive: true });
    await mkdir(join(tree, 'lib'));
    await copyFile(NODE_BIN, join(tree, 'bin/node'));
    for (const l of libs) await copyFile(l, join(tree, 'lib', basename(l)));
    // docker run --init inside the pod (static: it runs inside the container)
    if (existsSync(TINI)) await copyFile(TINI, join(tree, 'bin/tini-static'));
    // the ns runtime's spawner (dynamically linked: run through the loader above); the shim itself is the initramfs's static one
    await copyFile(SPAWNER, join(tree, 'bin/krd-spawner'));
    await mkdir(join(tree, 'app'));
    // "type": "module" makes node read the .js files as ES modules
    await writeFile(join(tree, 'app/package.json'), await readFile(join(REPO, 'package.json')));
    for (const f of sources) {
      const dest = join(tree, 'app', relative(REPO, f)).replace(/\.ts$/, '.js');
      await mkdir(join(dest, '..'), { recursive: true });
      await writeFile(dest, toJavaScript(await readFile(f, 'utf8')));
    }
    try {
      await run('mkfs.erofs', ['--quiet', '-T0', '-U', '00000000-0000-0000-0000-000000000000', join(tmp, 'disk'), tree], { maxBuffer: 1 << 20 });
    } catch (err) {
      const e = err as { stderr?: string; code?: string };
      if (e.code === 'ENOENT') throw new KrError('unavailable', 'mkfs.erofs is missing: install erofs-utils (make deps)');
      throw new KrError('io', `mkfs.erofs (tools disk): ${(e.stderr ?? String(err)).trim().split('\n').pop()}`);
    }
    await rename(join(tmp, 'disk'), out);
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}
