// bali run of a ≥100 MB signed image to its first instruction (/bin/true) vs the baseline
// `gzip -dc FILE | tar -x -C <tmpfs> && unshare -m chroot <tmpfs> /bin/true`, the baseline run
// inside `unshare -m` with a fresh tmpfs each time (so, like ours, it leaves nothing behind).
// Goal: ≤ 1.1× the baseline's time.
//
// The image is a rootfs of realistic mix: busybox (with its applet links), the pinned node binary
// (~127 MB: one big file), and thousands of small files (python's stdlib, perl's library, the
// host's /usr/share/doc: what a debootstrap rootfs is mostly made of).
// BALI_BENCH_RUNS sets the number of runs of each side (default 7).
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { keyFromSecretString } from '../src/bali/keys.ts';
import { encodeKeyString } from '../src/bali/key-string.ts';
import { writeBaliFile } from '../src/bali/sign.ts';
import { median, sh, sideBySide, type Row } from './lib.ts';

const SMALL_TREES = ['usr/lib/python3.11', 'usr/share/perl', 'usr/lib/x86_64-linux-gnu/perl', 'usr/share/doc'];

function stageRootfs(dir: string, repo: string): void {
  for (const d of ['bin', 'sbin', 'etc', 'usr/local/bin', 'tmp', 'root']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  const applets = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.copyFileSync(path.join(repo, 'node_modules/node/bin/node'), path.join(dir, 'usr/local/bin/node'));
  fs.chmodSync(path.join(dir, 'usr/local/bin/node'), 0o755);
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\n');
}

/** The rootfs tar: the staged dir, then the host's small-file trees under the same root. */
function rootfsTar(stage: string, out: string): void {
  const trees = SMALL_TREES.filter((t) => fs.existsSync('/' + t));
  const r = spawnSync('sh', ['-c', `tar -C '${stage}' -cf - . | cat > '${out}' && tar -C / -rf '${out}' ${trees.join(' ')}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  // -r appends after the first archive's end blocks are cut off, giving one archive.
  if (r.status !== 0) throw new Error(`building the rootfs tar failed: ${r.stderr}`);
}

function countEntries(tarFile: string): number {
  return spawnSync('tar', ['-tf', tarFile], { maxBuffer: 1 << 28, encoding: 'utf8' }).stdout.split('\n').filter(Boolean).length;
}

/** Runs cmd, returning its stderr (for BALI_TIMINGS lines). */
function shErr(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(err) : reject(new Error(`${cmd} exited ${code}: ${err.trim()}`))));
  });
}

export interface RunImage {
  file: string;
  identity: string;
  tarBytes: number;
  entries: number;
}

/** Builds and signs the bench image in `work`. */
export async function buildRunImage(work: string, repo: string): Promise<RunImage> {
  const stage = fs.mkdtempSync(path.join(work, 'run-rootfs-'));
  stageRootfs(stage, repo);
  const tarFile = path.join(work, 'run-bench.tar');
  rootfsTar(stage, tarFile);
  fs.rmSync(stage, { recursive: true, force: true });
  const tarBytes = fs.statSync(tarFile).size;
  const entries = countEntries(tarFile);
  const key = keyFromSecretString(encodeKeyString('secret', new Uint8Array(randomBytes(32))));
  const file = path.join(work, 'run-bench.bali.tar.gz');
  await writeBaliFile(file, fs.createReadStream(tarFile), key);
  fs.rmSync(tarFile);
  return { file, identity: key.identity, tarBytes, entries };
}

export async function benchRun(work: string, repo: string): Promise<Row[]> {
  const { file, identity, tarBytes, entries } = await buildRunImage(work, repo);
  const target = fs.mkdtempSync(path.join(work, 'run-target-'));

  const bali = path.join(repo, 'node_modules', '.bin', 'bali');
  const env = { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' };
  const ours = ['run', '--identity', identity, file, '--', '/bin/true'];
  const baseline = `mount -t tmpfs tmpfs '${target}' && gzip -dc '${file}' | tar -x -C '${target}' && unshare -m chroot '${target}' /bin/true`;
  await sh(bali, ours, { env }); // warm the page cache and the native addon's build once
  const runs = Number(process.env.BALI_BENCH_RUNS ?? 7);
  const t = await sideBySide(
    runs,
    () => sh(bali, ours, { env }),
    () => sh('unshare', ['-m', 'sh', '-c', baseline], { env }),
  );

  // Where our time goes: stage 2 prints phase times with BALI_TIMINGS=1 (median of 3).
  const phases = new Map<string, number[]>();
  for (let i = 0; i < 3; i++) {
    const err = await shErr(bali, ours, { ...env, BALI_TIMINGS: '1' });
    for (const m of err.matchAll(/^bali-timing (\S+) ([\d.]+)$/gm)) {
      if (!phases.has(m[1])) phases.set(m[1], []);
      phases.get(m[1])!.push(Number(m[2]));
    }
  }
  const phaseNote = [...phases].map(([k, v]) => `${k} ${median(v).toFixed(0)} ms`).join(', ');

  // bin/bali starts stage 2 directly (no --mem), so the clock starts with stage 2's Node.
  if (phaseNote) process.stderr.write(`bench: bali run phases (ms since stage 2's Node started): ${phaseNote}\n`);
  const row: Row = {
    name: `bali run to /bin/true (${(tarBytes / 1e6).toFixed(0)} MB tar, ${entries} entries, ${(fs.statSync(file).size / 1e6).toFixed(0)} MB gz, ${runs} runs each)`,
    ours: t.ours,
    baseline: t.baseline,
    baselineName: 'unshare -m: tmpfs; gzip -dc | tar -x; unshare -m chroot /bin/true',
    bytes: tarBytes,
    goal: '≤ 1.1× time',
    note: phaseNote ? `phases (ms since stage 2's Node started): ${phaseNote}` : undefined,
  };
  fs.rmSync(file);
  fs.rmdirSync(target);
  return [row];
}
