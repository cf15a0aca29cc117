// pull of a multi-layer image (≥ 50 MB) from a loopback docker-registry vs
// `skopeo copy docker://… oci:DIR:tag`. Goal: ≥ 1.0× skopeo's throughput.
// Two images: 5 layers of random (incompressible) files, and a realistic compressible one
// (the pinned node binary, typescript's lib, …, each gzip -6). Each is measured twice against
// the same skopeo runs: our pull as its own process (bench/pull-once.ts on the pinned node,
// start-up included, like skopeo's), and in-process (no start-up). The process runs with
// NODE_COMPILE_CACHE (what a CLI launcher can set): without it every start strips and compiles
// our TypeScript again (a row shows that too); the first run fills the cache.
// Both sides make blobs durable: skopeo fsyncs each blob before its rename into the layout, our
// store fdatasyncs each before its rename.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pull, push } from '../src/image/registry/index.ts';
import { BlobStore } from '../src/image/store.ts';
import { MediaType, type Descriptor, type Image, type ImageConfigFile, type Manifest } from '../src/image/types.ts';
import { randomImage } from '../test/kit/random-image.ts';
import { startRegistry } from '../test/kit/registry.ts';
import { median, sh, type Row } from './lib.ts';

const RUNS = 9;
const digestOf = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** An image whose layers are gzip (-6) tars of real files from the repo: compressible, like most images. */
function realisticImage(repo: string): Image {
  const sets = [['node_modules/node/bin'], ['node_modules/typescript/lib'], ['node_modules/@types', 'node_modules/undici-types'], ['src', 'test', 'bench']];
  const blobs: Buffer[] = [];
  const diffIds: string[] = [];
  for (const paths of sets) {
    const tar = spawnSync('tar', ['-C', repo, '--sort=name', '--mtime=@1700000000', '--owner=0', '--group=0', '-cf', '-', ...paths], { maxBuffer: 1 << 30 }).stdout;
    diffIds.push(digestOf(tar));
    blobs.push(gzipSync(tar, { level: 6 }));
  }
  const config: ImageConfigFile = {
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/node_modules/node/bin/node'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const layers: Descriptor[] = blobs.map((b) => ({ mediaType: MediaType.ociLayerGzip, digest: digestOf(b), size: b.length }));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: digestOf(configBytes), size: configBytes.length },
    layers,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return {
    manifest,
    manifestDigest: digestOf(manifestBytes),
    manifestBytes,
    config,
    configBytes,
    layers: layers.map((descriptor, i) => ({ descriptor, open: async () => Readable.from([blobs[i]]) })),
  };
}

/** Alternates the contenders (ours in a process, in-process, the baseline…), rotating who goes
 *  first, after one unmeasured round (page cache, compile cache, JIT); medians in seconds. */
export async function rotate(fns: (() => Promise<void>)[], before: () => void): Promise<number[]> {
  for (const fn of fns) {
    before();
    await fn();
  }
  const times: number[][] = fns.map(() => []);
  for (let i = 0; i < RUNS; i++) {
    for (let k = 0; k < fns.length; k++) {
      const j = (i + k) % fns.length;
      before();
      const t0 = process.hrtime.bigint();
      await fns[j]();
      times[j].push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return times.map(median);
}

export async function benchPull(work: string, repo: string): Promise<Row[]> {
  const node = path.join(repo, 'node_modules', 'node', 'bin', 'node');
  const once = path.join(repo, 'bench', 'pull-once.ts');
  const compileCache = path.join(repo, '.cache', 'node-compile');
  const registry = await startRegistry({ storageDir: path.join(work, 'registry') });
  const rows: Row[] = [];
  try {
    // The 200 MB one shows throughput once the fixed cost of a process start (~60-90 ms for
    // Node, ~10 ms for Go's skopeo) is spread over more bytes.
    const images: [string, Image][] = [
      ['random', await randomImage({ layers: 5, layerSize: 12 << 20 })],
      ['realistic', realisticImage(repo)],
      ['random-200', await randomImage({ layers: 4, layerSize: 50 << 20 })],
    ];
    for (const [name, image] of images) {
      const ref = `${registry.host}/bench/${name}:v1`;
      await push(image, ref);
      const bytes = image.manifest.layers.reduce((n, l) => n + l.size, 0) + image.configBytes.length;
      const storeDir = path.join(work, 'pull-store');
      const ociDir = path.join(work, 'pull-oci');
      const clean = () => {
        fs.rmSync(storeDir, { recursive: true, force: true });
        fs.rmSync(ociDir, { recursive: true, force: true });
      };
      const noCache = { ...process.env };
      delete noCache.NODE_COMPILE_CACHE;
      const [proc, procCold, inproc, skopeo] = await rotate(
        [
          () => sh(node, ['--no-warnings', once, ref, storeDir], { env: { ...process.env, NODE_COMPILE_CACHE: compileCache } }),
          () => sh(node, ['--no-warnings', once, ref, storeDir], { env: noCache }),
          async () => {
            await pull(ref, { store: await BlobStore.open(storeDir) });
          },
          () => sh('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${ociDir}:v1`]),
        ],
        clean,
      );
      clean();
      const what = `${image.manifest.layers.length} layers, ${(bytes / 1e6).toFixed(0)} MB ${name.startsWith('random') ? 'random' : 'gzip -6 of real files'}`;
      const base = { baseline: skopeo, baselineName: 'skopeo copy → oci:', bytes, goal: '≥ 1.0× throughput' };
      rows.push({ name: `pull (${what}; own process incl. node start)`, ours: proc, ...base });
      rows.push({ name: `pull (${what}; own process, no compile cache)`, ours: procCold, ...base });
      rows.push({ name: `pull (${what}; in-process)`, ours: inproc, ...base });
    }
  } finally {
    await registry.stop();
  }
  return rows;
}
