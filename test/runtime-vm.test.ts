// The runtime conformance suite against the vm runtime on real pod microVMs (qemu; KVM where
// usable, TCG otherwise — printed): every container is a VM of its own, so the suite runs a few
// tests at a time (all at once, the boots starve each other on a small machine). Plus what only a
// VM pod has: a read-only bind holds against a guest that remounts it writable (virtiofsd's source
// is a read-only bind on the host).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { after, describe, test } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeConformance } from '../src/runtime/conformance.ts';
import { VmRuntime } from '../src/runtime/vm/vm-runtime.ts';
import { chooseAccel } from '../src/vm/qemu.ts';
import { buildTestImage, type BuiltImage } from './kit/build-image.ts';

let built: Promise<BuiltImage> | undefined;
let imageDir: string | undefined;
const image = async () => {
  built ??= mkdtemp(join(tmpdir(), 'kraud-rt-img-')).then((d) => buildTestImage((imageDir = d)));
  return (await built).image;
};
const accel = chooseAccel();
const started = Date.now();
after(async () => {
  console.log(`# vm runtime tests (accel ${accel}): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (imageDir) await rm(imageDir, { recursive: true, force: true });
});
console.log(`# runtime under test: vm (qemu microVM pods, accelerator: ${accel})`);
runtimeConformance('vm', async (dir) => new VmRuntime(dir, { accel }), async () => ({ rootfs: { image: await image() } }), { concurrency: 3 });

describe('vm runtime: read-only binds are enforced on the host', () => {
  test('a guest that remounts a read-only share writable still cannot write to it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kraud-rt-vm-ro-'));
    const host = await mkdtemp(join(tmpdir(), 'kraud-rt-bind-'));
    await writeFile(join(host, 'f'), 'from host\n');
    try {
      const rt = new VmRuntime(root, { accel });
      // CAP_SYS_ADMIN: the container may remount what the guest mounted read-only (as a hostile guest can)
      const c = await rt.create({
        id: `ro-${process.pid}`,
        rootfs: { image: await image() },
        capAdd: ['SYS_ADMIN'],
        args: ['/bin/sh', '-c', 'cat /mnt/in/f; busybox mount -o remount,rw /mnt/in && echo remounted; busybox mount -o remount,rw,bind /mnt/in && echo rebound; echo z > /mnt/in/g && echo wrote; echo z >> /mnt/in/f && echo appended; true'],
        mounts: [{ type: 'bind', source: host, target: '/mnt/in', readonly: true }],
      });
      const io = await c.attach();
      await c.start();
      let out = '';
      for await (const d of io.stdout!) out += d;
      await c.wait();
      await c.delete();
      assert.match(out, /^from host\n/);
      assert.match(out, /remounted/); // the guest kernel let it: only the host stands in the way
      assert.doesNotMatch(out, /wrote|appended/);
      assert.deepEqual(await readdir(host), ['f']);
    } finally {
      await rm(root, { recursive: true, force: true });
      await rm(host, { recursive: true, force: true });
    }
  });
});
