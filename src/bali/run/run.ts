// bali run: fetch → verify while extracting into a tmpfs that exists only in a new private
// mount namespace → mounts → pivot_root → drop to the user → execve. The process that called
// `bali run` becomes the service (same PID, same cgroup and rlimits, host network and pids).
//
// Linux namespaces belong to threads, and Node has several, so the namespace is entered by
// execve: stage 1 (here, in the caller's namespace) checks every option, then execs
// `bali-enter unshare`, which makes the namespace and tmpfs and execs stage 2 (Node again, now
// wholly inside). Stage 2 verifies and extracts, then execs `bali-enter enter`, which mounts,
// pivots, drops privileges and execs the service. Three execs, one PID.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KrError } from '../../util/errors.ts';
import type { ProgressSink } from '../../util/progress.ts';
import { readConfigHeader } from '../../image/config-header.ts';
import { extractTar } from '../../image/extract.ts';
import { readTrustedIdentities } from '../keys.ts';
import { openVerifiedTar } from '../verify.ts';
import { limitMemory } from './cgroup.ts';
import { openSource } from '../../util/fetch.ts';
import { makeMountPoint, resolveInRoot } from './mount-points.ts';
import type { RunOptions } from './options.ts';
import { serviceSpec } from './service.ts';

const repoRoot = path.resolve(import.meta.dirname, '..', '..', '..');
export const ENTER_HELPER = path.join(repoRoot, 'build', 'bali-enter');
/** Where stage 2 mounts its tmpfs. An existing directory nothing in stage 2 needs: the mount
 * hides it only inside the new namespace, and nothing is created on the host. (/tmp would hide
 * the caller's files and volume sources; the service gets a fresh sysfs of its own anyway.) */
const STAGE2_ROOT = '/sys';
const STAGE_VAR = 'BALI_RUN_STAGE2';
/** With BALI_TIMINGS=1, stage 1 passes its start time (ms, epoch) on, so stage 2 can report phases against it. */
const T0_VAR = 'BALI_TIMINGS_T0';

/** Reports a phase: ms since stage 1 started (or since this process started, without stage 1). */
export type PhaseSink = (phase: string, msSinceStart: number) => void;

function phaseClock(sink: PhaseSink | undefined): (phase: string) => void {
  if (!sink) return () => {};
  const t0 = Number(process.env[T0_VAR]) || performance.timeOrigin;
  sink('stage2-start', performance.timeOrigin - t0);
  return (phase) => sink(phase, performance.timeOrigin + performance.now() - t0);
}

export function isStage2(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[STAGE_VAR] === STAGE2_ROOT;
}

function requireHelper(): void {
  if (!fs.existsSync(ENTER_HELPER)) throw new KrError('not-found', `${ENTER_HELPER} is missing: run 'make' (or 'make run') to build it`);
}

/**
 * The checks made before anything else: trust, the source file, volume sources. Stage 1 makes
 * them, and stage 2 again, since bin/bali may start stage 2 directly (see there).
 */
function checkRun(opts: RunOptions): Uint8Array[] {
  const trusted = readTrustedIdentities(opts.identities, opts.identityFiles);
  if (trusted.length === 0 && !opts.insecure) {
    throw new KrError('untrusted', 'refusing to run: no --identity or --identity-file to verify against (or --insecure-skip-verify)');
  }
  if (!/^https?:\/\//i.test(opts.source)) {
    const file = opts.source.startsWith('file://') ? new URL(opts.source).pathname : opts.source;
    if (!fs.existsSync(file)) throw new KrError('not-found', `${file}: no such file`);
  }
  for (const v of opts.volumes) if (!fs.existsSync(v.source)) throw new KrError('not-found', `volume source ${v.source} does not exist`);
  return trusted;
}

/** Stage 1: check everything that can be checked, then enter the namespace (never returns). */
export function startRun(opts: RunOptions, originalArgs: string[]): never {
  requireHelper();
  if (process.getuid?.() !== 0) throw new KrError('denied', 'bali run needs root (it makes a mount namespace and pivots into it)');
  checkRun(opts);
  if (opts.memoryBytes !== undefined) limitMemory(opts.memoryBytes);
  // Stage 2 gets the same Node flags (bin/bali's compile cache among them).
  const stage2 = [process.execPath, ...process.execArgv, path.join(repoRoot, 'src', 'cli', 'bali.ts'), 'run', ...originalArgs];
  const env: NodeJS.ProcessEnv = { ...process.env, [STAGE_VAR]: STAGE2_ROOT };
  if (env.BALI_TIMINGS) env[T0_VAR] = String(performance.timeOrigin);
  process.execve!(ENTER_HELPER, [ENTER_HELPER, 'unshare', STAGE2_ROOT, '--', ...stage2], env);
  throw new KrError('io', 'execve returned'); // unreachable: execve either replaces us or throws
}

/** Writes a file the runtime owns (resolv.conf, hosts, hostname), replacing links the image has there. */
function writeRuntimeFile(root: string, inside: string, content: string): void {
  const etc = makeMountPoint(root, path.dirname(inside), 'dir');
  const file = path.join(etc, path.basename(inside));
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (st && !st.isFile()) fs.rmSync(file, { recursive: true, force: true });
  fs.writeFileSync(file, content, { mode: 0o644 });
}

/** The standard mount points must be real directories inside the root, whatever the image has. */
function prepareStandardMounts(root: string): void {
  for (const dir of ['proc', 'sys', 'dev', 'run']) {
    const p = path.join(root, dir);
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) fs.rmSync(p, { force: true });
    if (!st || !st.isDirectory()) fs.mkdirSync(p, { mode: 0o755 });
  }
}

/**
 * Stage 2 must really be inside bali-enter's namespace, with a tmpfs on STAGE2_ROOT: a stray
 * BALI_RUN_STAGE2 in someone's environment must not make us extract onto the host's /sys.
 */
function requirePrivateRoot(root: string): void {
  const mounted = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === root)
    .pop();
  if (!mounted || !/ - tmpfs /.test(mounted)) throw new KrError('invalid', `${STAGE_VAR} is set, but ${root} is not bali's private tmpfs: unset it`);
}

/** Stage 2: inside the namespace with the tmpfs at STAGE2_ROOT. Ends in execve or throws. */
export async function finishRun(opts: RunOptions, progress: ProgressSink, warn: (msg: string) => void, timing?: PhaseSink): Promise<never> {
  const phase = phaseClock(timing);
  phase('stage2-main');
  const root = STAGE2_ROOT;
  const callerEnv = { ...process.env };
  delete callerEnv[STAGE_VAR];
  delete callerEnv[T0_VAR];
  const trusted = checkRun(opts);
  requirePrivateRoot(root);
  const source = await openSource(opts.source, progress);
  const { tar, verdict } = openVerifiedTar(source.stream, { trusted, insecure: opts.insecure });
  const header = await readConfigHeader(tar);
  // Extraction runs while verification reads; only a verified end of stream lets it finish.
  try {
    await extractTar(tar, root, { allowDevices: true });
    phase('extracted');
  } catch (err) {
    await verdict; // a verification failure explains a broken stream better than the extractor can
    throw err;
  }
  const v = await verdict;
  phase('verified');
  if (opts.insecure && !v.trusted) warn(`WARNING: running ${v.signed ? `a file signed by ${v.signer ?? 'an unknown key'}, not a trusted identity` : 'an unsigned file'} (--insecure-skip-verify)`);

  const spec = serviceSpec(root, header?.config ?? {}, opts, callerEnv);
  prepareStandardMounts(root);
  const binds: string[] = [];
  for (const vol of opts.volumes) {
    const kind = fs.statSync(vol.source).isDirectory() ? 'dir' : 'file';
    const target = makeMountPoint(root, vol.target, kind);
    binds.push('--bind', `${vol.source}:${path.relative(root, target)}${vol.readOnly ? ':ro' : ''}`);
  }
  const hostname = os.hostname();
  writeRuntimeFile(root, '/etc/resolv.conf', fs.existsSync('/etc/resolv.conf') ? fs.readFileSync('/etc/resolv.conf', 'utf8') : '');
  writeRuntimeFile(root, '/etc/hosts', `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`);
  writeRuntimeFile(root, '/etc/hostname', `${hostname}\n`);
  if (!fs.existsSync(resolveInRoot(root, spec.cwd))) makeMountPoint(root, spec.cwd, 'dir'); // docker creates WORKDIR

  const env: Record<string, string> = {};
  for (const e of spec.env) env[e.slice(0, e.indexOf('='))] = e.slice(e.indexOf('=') + 1);
  const args = [ENTER_HELPER, 'enter', root, ...binds, '--uid', String(spec.uid), '--gid', String(spec.gid), '--groups', spec.groups.join(','), '--cwd', spec.cwd, '--', ...spec.argv];
  phase('exec-enter');
  process.execve!(ENTER_HELPER, args, env);
  throw new KrError('io', 'execve returned');
}
