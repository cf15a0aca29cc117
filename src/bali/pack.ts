// Making bali files from images (registry, docker archive, OCI layout): flattened to one
// rootfs tar whose leading PAX global header carries the image config and the signer's
// identity, then signed.
import { PassThrough } from 'node:stream';
import { noProgress, type ProgressSink } from '../util/progress.ts';
import { encodeConfigHeader } from '../image/config-header.ts';
import { flatten } from '../image/flatten.ts';
import { openImageSource } from '../image/source.ts';
import type { Image } from '../image/types.ts';
import type { SigningKey } from './keys.ts';
import { writeBaliFile, type WrittenFile } from './sign.ts';
import { SIGNER_RECORD } from './signer-hint.ts';

export interface PackOptions {
  key: SigningKey | null;
  platform?: string;
  insecure?: boolean;
  progress?: ProgressSink;
  /** Content store for registry pulls (default: the user's cache). */
  storeDir?: string;
}

/** Flattens `image` and writes it to `target` as a bali file. */
export async function packImage(image: Image, target: string, key: SigningKey | null, progress: ProgressSink = noProgress): Promise<WrittenFile> {
  const body = new PassThrough({ highWaterMark: 1 << 20 });
  body.write(encodeConfigHeader(image.config, key ? { [SIGNER_RECORD]: key.identity } : {}));
  const flattening = flatten(image, body, { configHeader: false, progress });
  // If flattening fails, the writer sees the error and removes its temp file.
  flattening.catch((err) => body.destroy(err));
  const [written] = await Promise.all([writeBaliFile(target, body, key), flattening]);
  progress({ id: 'bali', status: key ? 'Signed' : 'Packed' });
  return written;
}

export async function packSource(source: string, target: string, opts: PackOptions): Promise<WrittenFile> {
  const image = await openImageSource(source, {
    platform: opts.platform,
    insecure: opts.insecure,
    progress: opts.progress,
    storeDir: opts.storeDir,
  });
  try {
    return await packImage(image, target, opts.key, opts.progress);
  } finally {
    await image.close();
  }
}
