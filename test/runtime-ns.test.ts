// The runtime conformance suite against the namespace runtime (krd-shim), with the busybox test image.
import { mkdtemp, rm } from 'node:fs/promises';
import { after } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeConformance } from '../src/runtime/conformance.ts';
import { NsRuntime } from '../src/runtime/ns/ns-runtime.ts';
import { buildTestImage, type BuiltImage } from './kit/build-image.ts';

let built: Promise<BuiltImage> | undefined;
let imageDir: string | undefined;
after(async () => {
  if (imageDir) await rm(imageDir, { recursive: true, force: true });
});
console.log('# runtime under test: ns (krd-shim: namespaces + overlayfs + cgroups)');
runtimeConformance('ns', async (dir) => new NsRuntime(dir), async () => {
  built ??= mkdtemp(join(tmpdir(), 'kraud-rt-img-')).then((d) => buildTestImage((imageDir = d)));
  return { rootfs: { image: (await built).image } };
});
