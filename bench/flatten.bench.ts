// flatten of a ≥ 100 MB image (the standard test image plus ~100 MB of random files, as an OCI
// layout) vs `umoci unpack --image DIR:TAG BUNDLE`. No goal: the ratio is reported.
// The end products differ: umoci writes a rootfs directory (plus config.json and an mtree
// manifest), flatten writes one tar stream. So ours is timed twice: flatten → /dev/null (the tar
// alone), and flatten piped into GNU `tar -x` (a rootfs directory, like umoci's).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { flatten } from '../src/image/flatten.ts';
import { openOciLayout } from '../src/image/oci-layout.ts';
import { buildTestImage } from '../test/kit/build-image.ts';
import { sh, type Row } from './lib.ts';
import { rotate } from './pull.bench.ts';

const EXTRA = 100 << 20;

export async function benchFlatten(work: string): Promise<Row[]> {
  const built = await buildTestImage(path.join(work, 'flatten-image'), { extraBytes: EXTRA, tag: 'bench' });
  const bytes = built.image.manifest.layers.reduce((n, l) => n + l.size, 0);
  const bundle = path.join(work, 'flatten-bundle');
  const rootfs = path.join(work, 'flatten-rootfs');
  const spool = path.join(work, 'flatten-spool');
  fs.mkdirSync(spool, { recursive: true });
  const clean = () => {
    fs.rmSync(bundle, { recursive: true, force: true });
    fs.rmSync(rootfs, { recursive: true, force: true });
  };
  const toDevNull = async () => {
    const image = await openOciLayout(built.layoutDir, { tag: built.tag });
    try {
      await flatten(image, fs.createWriteStream('/dev/null'), { tmpDir: spool });
    } finally {
      await image.close();
    }
  };
  const toTarX = async () => {
    fs.mkdirSync(rootfs);
    const image = await openOciLayout(built.layoutDir, { tag: built.tag });
    const tar = spawn('tar', ['-x', '-p', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', rootfs], { stdio: ['pipe', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => tar.on('exit', resolve));
    try {
      await flatten(image, tar.stdin, { tmpDir: spool });
    } finally {
      await image.close();
    }
    await finished(tar.stdin).catch(() => {});
    const code = await exited;
    if (code !== 0) throw new Error(`tar -x exited ${code}`);
  };
  const umoci = () => sh('umoci', ['unpack', '--image', `${built.layoutDir}:${built.tag}`, bundle]);
  const [devnull, tarx, base] = await rotate([toDevNull, toTarX, umoci], clean);
  clean();
  fs.rmSync(path.join(work, 'flatten-image'), { recursive: true, force: true });
  fs.rmSync(spool, { recursive: true, force: true });
  const what = `${built.image.manifest.layers.length} layers, ${(bytes / 1e6).toFixed(0)} MB`;
  const note = 'umoci writes a rootfs directory (+ config.json, mtree); flatten writes one tar';
  const common = { baseline: base, baselineName: 'umoci unpack (→ rootfs dir)', bytes, goal: 'report', note };
  return [
    { name: `flatten (${what}) → /dev/null: one tar stream, not a directory`, ours: devnull, ...common },
    { name: `flatten (${what}) \\| tar -x: a rootfs directory, like umoci's`, ours: tarx, ...common },
  ];
}
