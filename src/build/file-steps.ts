// The steps that change files — RUN, COPY, ADD, WORKDIR — run on the mounted overlay `root`.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KrError } from '../util/errors.ts';
import { resolveUser } from '../image/users.ts';
import { makeMountPoint } from '../bali/run/mount-points.ts';
import { openSource } from '../util/fetch.ts';
import type { ContextEntry } from './dockerfile/dockerignore.ts';
import type { Step } from './dockerfile/expand.ts';
import type { CopyInstruction, Instruction, RunInstruction } from './dockerfile/types.ts';
import type { BuildOptions } from './builder.ts';
import { resolveBase } from './base.ts';
import type { BuildCache, StepState } from './cache.ts';
import { digestOf, fileHeader, planCopy, type PlannedEntry, type SourceRoot } from './copy-plan.ts';
import { applyArchive, applyCopy, isLocalArchive } from './copy-apply.ts';
import { commandOf } from './image-config.ts';
import { mountOverlay, unmount } from './overlay.ts';
import { runInRoot } from './run-step.ts';

export interface FileStepContext {
  opts: BuildOptions;
  cache: BuildCache;
  included: Map<string, ContextEntry['type']>;
  /** Finished stages by index, and a way to find one by --from name or number. */
  done: Map<number, { key: string; state: StepState }>;
  stageIndex: (ref: string) => number | undefined;
  /** The Dockerfile's name, for messages ("Dockerfile:12: …"). */
  file: string;
  state: StepState;
  step: Step;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** RUN argv: a lone heredoc is the script itself; other heredocs stay shell syntax for sh to read. */
function runArgv(inst: RunInstruction, shell: string[]): string[] {
  if (inst.form === 'exec') return inst.command as string[];
  const text = (inst.command as string).trim();
  if (inst.heredocs.length === 1 && /^<<-?(["']?)\w+\1$/.test(text)) return [...shell, inst.heredocs[0].content];
  if (inst.heredocs.length === 0) return commandOf('shell', text, shell);
  const bodies = inst.heredocs.map((h) => `${h.content}${h.name}\n`).join('');
  return [...shell, `${text}\n${bodies}`];
}

async function runStep(inst: RunInstruction, root: string, ctx: FileStepContext): Promise<void> {
  // ARGs are in RUN's environment; ENV wins over an ARG of the same name.
  const env = new Map([...ctx.step.args, ...ctx.step.env]);
  const code = await runInRoot({
    root,
    argv: runArgv(inst, ctx.state.shell),
    env,
    user: ctx.state.config.User,
    workdir: ctx.state.config.WorkingDir || '/',
    network: inst.flags.network,
    output: ctx.opts.output,
  });
  if (code !== 0) {
    const text = typeof inst.command === 'string' ? inst.command : JSON.stringify(inst.command);
    throw Object.assign(new KrError('invalid', `${ctx.file}:${inst.line}: RUN ${text.split('\n')[0]} failed with exit code ${code}`), { exitCode: code });
  }
}

/** The root a COPY/ADD reads from; `release` unmounts a stage mounted for it. */
async function sourceRoot(inst: CopyInstruction, ctx: FileStepContext): Promise<{ root: SourceRoot; release: () => void }> {
  const from = inst.flags.from;
  if (from === undefined) return { root: { dir: ctx.opts.context, included: ctx.included, isRootfs: false }, release: () => {} };
  const index = ctx.stageIndex(from);
  let layers: string[];
  if (index !== undefined) layers = ctx.done.get(index)!.state.layers;
  else {
    const base = await resolveBase(from, { cache: ctx.cache, context: ctx.opts.context, trusted: ctx.opts.trusted, insecure: ctx.opts.insecure, progress: ctx.opts.progress });
    layers = base.layer ? [base.layer] : [];
  }
  const scratch = ctx.cache.scratch();
  if (layers.length === 0) return { root: { dir: scratch.merged, included: null, isRootfs: true }, release: () => ctx.cache.discard(scratch.dir) };
  mountOverlay(ctx.cache.root, [...layers].reverse(), scratch.merged);
  return {
    root: { dir: scratch.merged, included: null, isRootfs: true },
    release: () => {
      unmount(scratch.merged);
      ctx.cache.discard(scratch.dir);
    },
  };
}

function owner(inst: CopyInstruction, imageRoot: string): { uid: number; gid: number } | undefined {
  if (!inst.flags.chown) return undefined;
  const u = resolveUser(imageRoot, inst.flags.chown);
  return { uid: u.uid, gid: u.gid };
}

const downloads = new Map<string, { content: Buffer; mtime: number }>();

async function download(url: string, checksum: string | undefined): Promise<{ content: Buffer; mtime: number }> {
  const known = downloads.get(url);
  if (known) return known;
  const { stream } = await openSource(url);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  const content = Buffer.concat(chunks);
  if (checksum) {
    const got = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    if (got !== checksum) throw new KrError('corrupt', `ADD ${url}: checksum mismatch (got ${got}, want ${checksum})`);
  }
  const entry = { content, mtime: 0 };
  downloads.set(url, entry);
  return entry;
}

function splitSources(inst: CopyInstruction): { urls: string[]; local: CopyInstruction } {
  const urls = inst.kind === 'ADD' ? inst.sources.flatMap((s) => ('path' in s && isUrl(s.path) ? [s.path] : [])) : [];
  return { urls, local: { ...inst, sources: inst.sources.filter((s) => !('path' in s && isUrl(s.path))) } };
}

/** The cache input of a COPY/ADD: what the sources contain (not where they land). */
export async function copyInputs(inst: CopyInstruction, ctx: FileStepContext): Promise<unknown> {
  const { urls, local } = splitSources(inst);
  const remote = await Promise.all(urls.map(async (u) => createHash('sha256').update((await download(u, inst.flags.checksum)).content).digest('hex')));
  if (inst.flags.from !== undefined) {
    const index = ctx.stageIndex(inst.flags.from);
    return { from: index !== undefined ? ctx.done.get(index)!.key : inst.flags.from, remote };
  }
  const entries = local.sources.length ? planCopy(local, { source: { dir: ctx.opts.context, included: ctx.included, isRootfs: false }, imageRoot: null, workdir: '/' }) : [];
  return { local: digestOf(entries), remote };
}

async function copyStep(inst: CopyInstruction, root: string, ctx: FileStepContext): Promise<void> {
  const { urls, local } = splitSources(inst);
  const workdir = ctx.state.config.WorkingDir || '/';
  const own = owner(inst, root);
  const src = await sourceRoot(local, ctx);
  try {
    // ADD unpacks local tar archives from the context into DEST instead of copying them.
    const archives: string[] = [];
    if (inst.kind === 'ADD' && inst.flags.from === undefined) {
      local.sources = local.sources.filter((s) => {
        if (!('path' in s)) return true;
        const host = path.join(ctx.opts.context, path.posix.normalize('/' + s.path));
        const archive = fs.existsSync(host) && fs.statSync(host).isFile() && isLocalArchive(host);
        if (archive) archives.push(host);
        return !archive;
      });
    }
    const entries: PlannedEntry[] = local.sources.length ? planCopy(local, { source: src.root, imageRoot: root, workdir, owner: own }) : [];
    const dest = inst.dest.startsWith('/') ? inst.dest : path.posix.join(workdir, inst.dest);
    for (const url of urls) {
      const { content, mtime } = await download(url, inst.flags.checksum);
      const name = inst.dest.endsWith('/') ? path.posix.join(dest, path.posix.basename(new URL(url).pathname) || 'index.html') : dest;
      const mode = inst.flags.chmod !== undefined ? parseInt(inst.flags.chmod, 8) : 0o600; // docker: 0600 for downloads
      entries.push({ dest: name, from: url, header: fileHeader(content.length, mode, own, mtime), content });
    }
    if (entries.length) await applyCopy(root, entries);
    for (const a of archives) await applyArchive(root, dest, a);
  } finally {
    src.release();
  }
}

export async function runFileStep(inst: Instruction, root: string, ctx: FileStepContext): Promise<void> {
  switch (inst.kind) {
    case 'RUN':
      return runStep(inst, root, ctx);
    case 'COPY':
    case 'ADD':
      return copyStep(inst, root, ctx);
    case 'WORKDIR':
      makeMountPoint(root, ctx.state.config.WorkingDir || '/', 'dir');
      return;
    default:
      throw new KrError('invalid', `${ctx.file}:${inst.line}: ${inst.kind} is not supported by this builder`);
  }
}
