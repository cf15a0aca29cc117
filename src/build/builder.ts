// bali build: a Dockerfile, built without a docker daemon. Each stage starts from its base
// (base.ts); every instruction is a step whose cache key hashes the previous key, the
// instruction with its final values and its inputs. Config-only steps just change the config;
// RUN, COPY, ADD and WORKDIR run on an overlay of the layers so far, and the overlay's upper
// dir becomes the step's layer. The result is the target stage's layers as one tar (the
// overlay read through GNU tar) with the config header, signed like `bali pack`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { KrError, withContext } from '../util/errors.ts';
import { tempPathBeside } from '../util/atomic-file.ts';
import type { ProgressSink } from '../util/progress.ts';
import { encodeConfigHeader } from '../image/config-header.ts';
import type { ContainerConfig } from '../image/types.ts';
import type { SigningKey } from '../bali/keys.ts';
import { writeBaliFile, type WrittenFile } from '../bali/sign.ts';
import { SIGNER_RECORD } from '../bali/signer-hint.ts';
import { parseDockerfile } from './dockerfile/parse.ts';
import { StageScope, stagesOf, type Stage } from './dockerfile/expand.ts';
import { parseDockerignore, walkContextEntries, type ContextEntry } from './dockerfile/dockerignore.ts';
import type { Dockerfile, Instruction } from './dockerfile/types.ts';
import { resolveBase } from './base.ts';
import { BuildCache, hashKey, type StepState } from './cache.ts';
import { applyConfig, DEFAULT_SHELL, describe, type ConfigState } from './image-config.ts';
import { envMap } from '../image/container-env.ts';
import { emptyDir, mountOverlay, unmount } from './overlay.ts';
import { copyInputs, runFileStep, type FileStepContext } from './file-steps.ts';

export interface BuildOptions {
  context: string;
  dockerfile?: string;
  buildArgs: Record<string, string>;
  target?: string;
  out: string;
  key: SigningKey | null;
  cacheDir: string;
  trusted: Uint8Array[];
  insecure: boolean;
  /** One line per step, docker's classic style ("Step 2/7 : RUN …", " ---> Using cache"). */
  log: (line: string) => void;
  /** What RUN commands print. */
  output: (chunk: Buffer) => void;
  progress?: ProgressSink;
}

export interface BuildResult {
  file: WrittenFile;
  steps: number;
  cached: number;
}

interface StageResult {
  key: string;
  state: StepState;
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const dockerfilePath = opts.dockerfile ?? path.join(opts.context, 'Dockerfile');
  let text: string;
  try {
    text = fs.readFileSync(dockerfilePath, 'utf8');
  } catch {
    throw new KrError('not-found', `cannot read ${dockerfilePath}`);
  }
  const df = parseDockerfile(text, { file: path.basename(dockerfilePath) });
  const plan = stagesOf(df, { buildArgs: opts.buildArgs, target: opts.target });
  for (const unused of plan.unusedBuildArgs) opts.log(`[Warning] build-arg ${unused} was not consumed by any ARG`);
  const ignoreFile = path.join(opts.context, '.dockerignore');
  const patterns = fs.existsSync(ignoreFile) ? parseDockerignore(fs.readFileSync(ignoreFile, 'utf8')) : [];
  const included = new Map<string, ContextEntry['type']>((await walkContextEntries(opts.context, patterns)).map((e) => [e.path, e.type]));
  const cache = new BuildCache(opts.cacheDir);
  const total = plan.needed.reduce((n, i) => n + plan.stages[i].instructions.length + 1, 0);
  const counter = { step: 0, total, cached: 0 };
  const done = new Map<number, StageResult>();
  const stageIndex = (ref: string): number | undefined => {
    if (/^\d+$/.test(ref)) return Number(ref) < plan.stages.length ? Number(ref) : undefined;
    const i = plan.stages.findIndex((s) => s.name === ref.toLowerCase());
    return i >= 0 ? i : undefined;
  };
  for (const index of plan.needed) {
    const stage = plan.stages[index];
    done.set(index, await buildStage(stage, plan.globalArgs, opts, cache, included, done, stageIndex, counter, df));
  }
  const final = done.get(plan.target)!;
  const file = await cachedOutput(final.key, cache, opts, () => writeOutput(final.state, cache, opts));
  return { file, steps: counter.step, cached: counter.cached };
}

async function buildStage(
  stage: Stage,
  globalArgs: Map<string, string | undefined>,
  opts: BuildOptions,
  cache: BuildCache,
  included: Map<string, ContextEntry['type']>,
  done: Map<number, StageResult>,
  stageIndex: (ref: string) => number | undefined,
  counter: { step: number; total: number; cached: number },
  df: Dockerfile,
): Promise<StageResult> {
  counter.step++;
  opts.log(`Step ${counter.step}/${counter.total} : FROM ${stage.from.image}${stage.name ? ` AS ${stage.name}` : ''}`);
  let key: string;
  let state: StepState;
  if ('stage' in stage.base) {
    ({ key, state } = done.get(stage.base.stage)!);
  } else {
    const base = await resolveBase(stage.base.image, { cache, context: opts.context, trusted: opts.trusted, insecure: opts.insecure, progress: opts.progress });
    key = hashKey('FROM', base.id);
    state = { layers: base.layer ? [base.layer] : [], config: structuredClone(base.config), shell: DEFAULT_SHELL, history: [] };
    opts.log(` ---> ${base.id.slice(0, 19)}`);
  }
  const baseEnv = envMap(state.config.Env ?? []);
  const scope = new StageScope({ globalArgs, buildArgs: opts.buildArgs, baseEnv, escape: df.escape });
  let cmdFromBase = true;
  for (const raw of stage.instructions) {
    counter.step++;
    const step = scope.step(raw);
    const inst = step.instruction;
    opts.log(`Step ${counter.step}/${counter.total} : ${firstLine(raw)}`);
    const ctx: FileStepContext = { opts, cache, included, done, stageIndex, file: df.file, state, step };
    const inputs = await stepInputs(inst, ctx);
    const stepKey = hashKey(key, describe(inst, state.shell), inputs);
    const hit = cache.lookup(stepKey);
    if (hit) {
      counter.cached++;
      opts.log(' ---> Using cache');
      state = hit;
    } else {
      const started = Date.now();
      state = await executeStep(inst, stepKey, ctx, cmdFromBase);
      cache.record(stepKey, state);
      opts.log(` ---> done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    }
    if (inst.kind === 'CMD') cmdFromBase = false;
    key = stepKey;
  }
  return { key, state };
}

function firstLine(inst: Instruction): string {
  const text = describe(inst, DEFAULT_SHELL);
  return text.length > 120 ? text.slice(0, 117) + '...' : text;
}

/** What besides the instruction decides a step's result. */
async function stepInputs(inst: Instruction, ctx: FileStepContext): Promise<unknown> {
  if (inst.kind === 'RUN') return { env: [...ctx.step.env], args: [...ctx.step.args], user: ctx.state.config.User, workdir: ctx.state.config.WorkingDir, shell: ctx.state.shell };
  if (inst.kind === 'COPY' || inst.kind === 'ADD') return copyInputs(inst, ctx);
  return null;
}

async function executeStep(inst: Instruction, stepKey: string, ctx: FileStepContext, cmdFromBase: boolean): Promise<StepState> {
  const prev = ctx.state;
  const cfg: ConfigState = { config: structuredClone(prev.config) as ContainerConfig, shell: prev.shell, cmdFromBase };
  const configOnly = applyConfig(cfg, inst, ctx.step.env);
  const history = [...prev.history, { created_by: describe(inst, prev.shell), ...(configOnly ? { empty_layer: true } : {}) }];
  if (configOnly) return { layers: prev.layers, config: cfg.config, shell: cfg.shell, history };

  const scratch = ctx.cache.scratch();
  try {
    const lowers = prev.layers.length ? [...prev.layers].reverse() : [path.relative(ctx.cache.root, emptyDir(ctx.cache.root))];
    mountOverlay(ctx.cache.root, lowers, scratch.merged, { diff: scratch.diff, work: scratch.work });
    try {
      await runFileStep(inst, scratch.merged, { ...ctx, state: { ...prev, config: cfg.config } });
    } finally {
      unmount(scratch.merged);
    }
    const layer = ctx.cache.keepLayer(stepKey, scratch.diff);
    return { layers: [...prev.layers, layer], config: cfg.config, shell: cfg.shell, history };
  } finally {
    ctx.cache.discard(scratch.dir);
  }
}

/**
 * The signed file for a final step key is the same every time (sorted tar, deterministic
 * Ed25519), so it is kept in the cache and copied out when nothing changed.
 */
async function cachedOutput(finalKey: string, cache: BuildCache, opts: BuildOptions, make: () => Promise<WrittenFile>): Promise<WrittenFile> {
  const name = `out-${hashKey(finalKey, opts.key ? opts.key.identity : 'unsigned').slice(0, 32)}`;
  const kept = path.join(cache.root, 's', `${name}.tar.gz`);
  const meta = cache.readMeta<WrittenFile>(name);
  if (meta && fs.existsSync(kept)) {
    const tmp = tempPathBeside(opts.out);
    try {
      fs.copyFileSync(kept, tmp, fs.constants.COPYFILE_FICLONE);
      fs.renameSync(tmp, opts.out);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw withContext(err, `cannot write ${opts.out}`);
    }
    opts.log(' ---> output unchanged, from the cache');
    return { ...meta, path: opts.out };
  }
  const file = await make();
  const tmp = `${kept}.${process.pid}.tmp`;
  fs.copyFileSync(opts.out, tmp, fs.constants.COPYFILE_FICLONE);
  fs.renameSync(tmp, kept);
  cache.writeMeta(name, file);
  return file;
}

/** The target's layers, read through a read-only overlay by GNU tar, into the signed file. */
async function writeOutput(state: StepState, cache: BuildCache, opts: BuildOptions): Promise<WrittenFile> {
  const scratch = cache.scratch();
  const lowers = state.layers.length ? [...state.layers].reverse() : [path.relative(cache.root, emptyDir(cache.root))];
  mountOverlay(cache.root, lowers, scratch.merged);
  try {
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    const image = { architecture: 'amd64', os: 'linux', config: state.config };
    body.write(encodeConfigHeader(image, opts.key ? { [SIGNER_RECORD]: opts.key.identity } : {}));
    // Sorted names and no atime/ctime: the same layers give the same bytes.
    const tar = spawn('tar', ['--sort=name', '--format=posix', '--pax-option=delete=atime,delete=ctime', '--numeric-owner', '--xattrs', '--xattrs-include=user.*', '--xattrs-include=security.capability', '-C', scratch.merged, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    tar.stdout.pipe(body);
    const exited = new Promise<void>((resolve, reject) =>
      tar.on('close', (code) => (code === 0 ? resolve() : reject(new KrError('io', `tar of the built rootfs failed: ${stderr.trim().split('\n').pop()}`)))),
    );
    exited.catch((err) => body.destroy(err));
    const [file] = await Promise.all([writeBaliFile(opts.out, body, opts.key), exited]);
    return file;
  } finally {
    unmount(scratch.merged);
    cache.discard(scratch.dir);
  }
}
