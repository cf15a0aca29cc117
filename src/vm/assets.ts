// The guest assets `make guest` builds (scripts/guest-assets.sh) into .cache/cradle: the kernel,
// the initramfs (cradle-init + krd-shim + modules) and the benchmark's bare initramfs, with digests.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KrError } from '../util/errors.ts';

export const ASSETS_DIR = fileURLToPath(new URL('../../.cache/cradle', import.meta.url));

export interface GuestAssets {
  kernelVersion: string;
  kernel: string;
  initramfs: string;
  bare: string;
  digests: { kernel: string; initramfs: string; bare: string };
}

export function guestAssets(dir: string = process.env.KRAUD_CRADLE_ASSETS || ASSETS_DIR): GuestAssets {
  const file = join(dir, 'assets.json');
  if (!existsSync(file)) throw new KrError('unavailable', `guest assets missing (${file}): run make guest`);
  const a = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  return {
    kernelVersion: a.kernelVersion,
    kernel: join(dir, 'vmlinuz'),
    initramfs: join(dir, 'initramfs.cpio'),
    bare: join(dir, 'bare.cpio'),
    digests: { kernel: a.vmlinuz, initramfs: a['initramfs.cpio'], bare: a['bare.cpio'] },
  };
}
