// A pod without a VM: vdocker (the same main.ts the guest runs) as a host process over the ns
// runtime, reached the same way — loopback, the pod secret, pod.json. It lets the vm runtime's
// whole host side (client, streams, hostile-answer checks) and vdocker run the runtime conformance
// suite where a microVM cannot come up in reasonable time (TCG on a loaded machine); the qemu
// part is covered by test/krd-vm.test.ts. Not a production path.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KrError } from '../../util/errors.ts';
import { SHARED_FILE } from '../../vm/launch-spec.ts';
import { killPod, podLaunchSpec, waitReady, type BootOptions, type PodRecord } from './pod-vm.ts';

const MAIN = fileURLToPath(new URL('../../guest/vdocker/main.ts', import.meta.url));

export async function bootHostPod(dir: string, o: BootOptions): Promise<PodRecord> {
  const rootfs = await o.disks.rootfs(o.image);
  const spec = podLaunchSpec(o, [process.execPath, MAIN], '127.0.0.1');
  const secret = spec.secret;
  const launch = join(dir, 'launch.json');
  await writeFile(launch, JSON.stringify(spec), { mode: 0o600 });
  // where vdocker finds the pod's shares (a VM's init mounts them there): links to the directories
  // and, for a file, a directory holding a link to it
  await mkdir(join(dir, 'guest', 'shares'), { recursive: true });
  for (const sh of o.shares ?? []) {
    const at = join(dir, 'guest', 'shares', sh.tag);
    if (sh.file) await mkdir(at);
    await symlink(sh.source, sh.file ? join(at, SHARED_FILE) : at);
  }
  const log = openSync(join(dir, 'vdocker.log'), 'w');
  // the launch file's path on the command line names the pod dir, as the runtime checks for a pod's pid
  const child = spawn(process.execPath, ['--no-warnings', MAIN, launch], {
    detached: true,
    stdio: ['ignore', 'pipe', log],
    env: { ...process.env, KRAUD_LAUNCH: launch, KRAUD_VDOCKER_ROOT: join(dir, 'guest'), KRAUD_VDOCKER_IMAGES: rootfs, KRAUD_VDOCKER_PORT: '0' },
  });
  closeSync(log);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new KrError('unavailable', `host pod ${o.id}: vdocker did not start (see ${dir}/vdocker.log)`)), o.readyTimeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening on [\d.]+:(\d+)\n/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.destroy();
      resolve(Number(m[1]));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new KrError('unavailable', `host pod ${o.id}: vdocker exited (${code}) (see ${dir}/vdocker.log)`));
    });
  });
  child.unref();
  const pod: PodRecord = { id: o.id, secret, port, pid: child.pid!, accel: o.accel };
  await writeFile(join(dir, 'pod.json.tmp'), JSON.stringify(pod), { mode: 0o600 });
  await rename(join(dir, 'pod.json.tmp'), join(dir, 'pod.json'));
  if ((await waitReady(pod, o.readyTimeoutMs)) !== true) {
    killPod(pod);
    throw new KrError('unavailable', `host pod ${o.id}: vdocker does not answer`);
  }
  return pod;
}
