// The runtime conformance suite against the vm runtime on real pod microVMs (qemu; KVM where
// usable, TCG otherwise — printed): every container is a VM of its own, so the suite runs a few
// tests at a time (all at once, the boots starve each other on a small machine). Plus what only a
// VM pod has: a read-only bind holds against a guest that remounts it writable (virtiofsd's source
// is a read-only bind on the host), and a bound file's share shows the guest that file alone.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

describe('vm runtime: binds hold against a hostile guest', () => {
  test('a read-only share remounted writable still cannot be written; a file share holds that file alone', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kraud-rt-vm-ro-'));
    const host = await mkdtemp(join(tmpdir(), 'kraud-rt-bind-'));
    const files = await mkdtemp(join(tmpdir(), 'kraud-rt-files-'));
    await writeFile(join(host, 'f'), 'from host\n');
    for (const f of ['ro.conf', 'rw.conf', 'sibling']) await writeFile(join(files, f), `${f}\n`);
    // the guest's own view of the file shares (b1 ro, b2 rw): it mounts them itself and looks around
    const fileShares = [
      'for t in b1 b2; do busybox mkdir -p /s/$t; busybox mount -t virtiofs $t /s/$t && echo $t: $(busybox ls -a /s/$t); done',
      'busybox mount -o remount,rw /s/b1 && echo remounted-file; echo z >> /s/b1/file && echo wrote-ro-file',
      'echo z > /s/b2/sibling && echo added-sibling; busybox mkdir /s/b2/d && echo added-dir; busybox rm /s/b2/file && echo removed-file; echo rw-ok >> /s/b2/file',
    ].join('; ');
    try {
      const rt = new VmRuntime(root, { accel });
      // CAP_SYS_ADMIN: the container may remount what the guest mounted read-only (as a hostile guest can)
      const c = await rt.create({
        id: `ro-${process.pid}`,
        rootfs: { image: await image() },
        capAdd: ['SYS_ADMIN'],
        args: ['/bin/sh', '-c', `cat /mnt/in/f; busybox mount -o remount,rw /mnt/in && echo remounted; busybox mount -o remount,rw,bind /mnt/in && echo rebound; echo z > /mnt/in/g && echo wrote; echo z >> /mnt/in/f && echo appended; ${fileShares}; true`],
        mounts: [
          { type: 'bind', source: host, target: '/mnt/in', readonly: true },
          { type: 'bind', source: join(files, 'ro.conf'), target: '/mnt/ro.conf', readonly: true },
          { type: 'bind', source: join(files, 'rw.conf'), target: '/mnt/rw.conf' },
        ],
      });
      const io = await c.attach();
      await c.start();
      let out = '';
      for await (const d of io.stdout!) out += d;
      await c.wait();
      await c.delete();
      assert.match(out, /^from host\n/);
      assert.match(out, /remounted/); // the guest kernel let it: only the host stands in the way
      assert.doesNotMatch(out, /wrote|appended|added|removed/);
      assert.deepEqual(await readdir(host), ['f']);
      assert.match(out, /^b1: \. \.\. file\nb2: \. \.\. file\n/m);
      assert.equal(await readFile(join(files, 'ro.conf'), 'utf8'), 'ro.conf\n');
      assert.equal(await readFile(join(files, 'rw.conf'), 'utf8'), 'rw.conf\nrw-ok\n');
      assert.deepEqual((await readdir(files)).sort(), ['ro.conf', 'rw.conf', 'sibling']);
      assert.equal(await readFile(join(files, 'sibling'), 'utf8'), 'sibling\n');
    } finally {
      await rm(root, { recursive: true, force: true });
      await rm(host, { recursive: true, force: true });
      await rm(files, { recursive: true, force: true });
    }
  });
});
