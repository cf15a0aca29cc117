// The runtime conformance suite against the vm runtime's host side with host pods: each pod's
// vdocker is the guest's main.ts run as a host process over the ns runtime (./src/runtime/vm/
// host-pod.ts), reached as a VM's is — loopback, the pod secret, bounded and checked answers.
// What qemu adds (booting the guest, the tools disk) is covered by test/krd-vm.test.ts; a pod VM
// per conformance test would take minutes each under TCG.
import { mkdtemp, rm } from 'node:fs/promises';
import { after } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeConformance } from '../src/runtime/conformance.ts';
import { bootHostPod } from '../src/runtime/vm/host-pod.ts';
import { VmRuntime } from '../src/runtime/vm/vm-runtime.ts';
import { buildTestImage, type BuiltImage } from './kit/build-image.ts';

let built: Promise<BuiltImage> | undefined;
let imageDir: string | undefined;
after(async () => {
  if (imageDir) await rm(imageDir, { recursive: true, force: true });
});
console.log('# runtime under test: vm (host side + vdocker, pods as host processes: no qemu)');
runtimeConformance(
  'vm',
  async (dir) => new VmRuntime(dir, { launcher: bootHostPod, accel: 'tcg' }),
  async () => {
    built ??= mkdtemp(join(tmpdir(), 'kraud-rt-img-')).then((d) => buildTestImage((imageDir = d)));
    return { rootfs: { image: (await built).image } };
  },
  { unsupported: { bindMounts: 'no shared directories into pod VMs yet', execReattach: 'guest exec ids are not kept across a krd restart yet' } },
);
