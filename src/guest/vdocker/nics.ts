// NICs hot-plugged into the pod VM while it runs (the host's src/runtime/vm/pod-nics.ts): the host
// plugs the device, then asks vdocker to configure it (POST /kraud/nics) or to let it go before
// unplugging it (DELETE /kraud/nics/NAME). The guest's cradle-nic (static C beside /init; the
// guest has no ip(8)) does the work. The body is the host's word on the interface, checked all the
// same: it becomes command-line arguments. It may carry the container's resolv.conf as krd now has
// it (joining a user network brings its embedded DNS), written over the pod's in place, so the
// containers' binds of it see the new text.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KrError } from '../../util/errors.ts';
import { noContent, readJson, type Router } from '../../engine/router.ts';

export interface GuestNic {
  name: string;
  mac: string;
  /** address/prefix */
  address: string;
  mtu: number;
}

export interface GuestNics {
  add(nic: GuestNic): Promise<void>;
  remove(name: string): Promise<void>;
}

const NAME = /^eth[0-9]{1,4}$/;

function checkNic(v: unknown): GuestNic {
  const o = v as Partial<GuestNic> | null;
  if (typeof o?.name !== 'string' || !NAME.test(o.name)) throw new KrError('invalid', 'nic: name must be ethN');
  if (typeof o.mac !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(o.mac)) throw new KrError('invalid', 'nic: mac must be six hex pairs');
  if (typeof o.address !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(o.address)) throw new KrError('invalid', 'nic: address must be IPv4/prefix');
  if (!Number.isInteger(o.mtu) || o.mtu! < 68 || o.mtu! > 65535) throw new KrError('invalid', 'nic: mtu must be 68-65535');
  return { name: o.name, mac: o.mac, address: o.address, mtu: o.mtu! };
}

export function nicRoutes(router: Router, nics: GuestNics, etcDir?: string): void {
  router.add('POST', /^\/kraud\/nics$/, async ({ req, res }) => {
    const body = await readJson(req);
    const nic = checkNic(body);
    const resolvConf = (body as { resolvConf?: unknown }).resolvConf;
    if (resolvConf !== undefined && (typeof resolvConf !== 'string' || resolvConf.length > 64 * 1024)) throw new KrError('invalid', 'nic: resolvConf must be text of at most 64 KiB');
    await nics.add(nic);
    if (etcDir && resolvConf !== undefined) await writeFile(join(etcDir, 'resolv.conf'), resolvConf);
    noContent(res);
  });
  router.add('DELETE', /^\/kraud\/nics\/([^/]+)$/, async ({ res, params }) => {
    if (!NAME.test(params[0])) throw new KrError('invalid', 'nic: name must be ethN');
    await nics.remove(params[0]);
    noContent(res);
  });
}

const run = promisify(execFile);

async function cradleNic(args: string[]): Promise<void> {
  await run('/bin/cradle-nic', args, { timeout: 90_000 }).catch((err: { stderr?: string; message: string }) => {
    throw new KrError('unavailable', (err.stderr || err.message).trim().split('\n').pop()!);
  });
}

/** In the VM guest. */
export const cradleNics: GuestNics = {
  add: (n) => cradleNic(['add', n.name, n.mac, n.address, String(n.mtu)]),
  remove: (name) => cradleNic(['del', name]),
};
