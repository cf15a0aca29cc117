// A krd with a busybox test image (plus `sleep`) pushed to a loopback registry: the fixture the
// container and exec tests share. The image is pulled by krd the first time a test uses it.
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerConfig } from '../../src/image/types.ts';
import { push } from '../../src/image/registry/index.ts';
import { buildImage, standardLayers, type EntrySpec } from './build-image.ts';
import { startKrd, type TestKrd } from './krd.ts';
import { startRegistry, type TestRegistry } from './registry.ts';

export interface KrdFixture {
  work: string;
  registry: TestRegistry;
  /** Reference of the pushed image. */
  img: string;
  krd: TestKrd;
}

/** `extra`: entries of one more layer on top (files a test needs in the image); `krdArgs`: more krd flags. */
export async function startKrdWithImage(prefix: string, config: ContainerConfig, extra: EntrySpec[] = [], krdArgs: string[] = []): Promise<KrdFixture> {
  const work = await fsp.mkdtemp(join(tmpdir(), prefix));
  const layers = [...standardLayers(), { entries: [{ type: 'symlink' as const, path: 'bin/sleep', target: 'busybox' }, ...extra] }];
  const [registry, built] = await Promise.all([startRegistry(), buildImage(join(work, 'image'), layers, { config })]);
  const img = `${registry.host}/kit/box:v1`;
  await push(built.image, img);
  const krd = await startKrd({ socket: join(work, 'krd.sock'), dataRoot: join(work, 'data'), args: krdArgs, loopbackPorts: [registry.port] });
  return { work, registry, img, krd };
}

/** Removes every container, stops krd and the registry, deletes the work dir (what exists of it). */
export async function stopKrdFixture(f: Partial<KrdFixture>): Promise<void> {
  if (f.krd) {
    for (const id of f.krd.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean)) f.krd.docker(['rm', '-f', id]);
    await f.krd.stop();
  }
  await f.registry?.stop();
  if (f.work) await fsp.rm(f.work, { recursive: true, force: true });
}
