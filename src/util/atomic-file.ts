// Output files appear whole or not at all: data goes to a temp file beside the target
// (same filesystem, so rename is atomic), is fsynced, then renamed into place. Any failure,
// including a full disk, removes the temp file, so no partial output is ever left behind.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable, Transform } from 'node:stream';
import { withContext } from './errors.ts';

export function tempPathBeside(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Streams `source` through `transforms` into `target` atomically. */
export async function writeFileAtomic(target: string, source: Readable, ...transforms: Transform[]): Promise<number> {
  const temp = tempPathBeside(target);
  let written = 0;
  try {
    const out = fs.createWriteStream(temp, { flags: 'wx', mode: 0o644 });
    out.on('pipe', () => {});
    await pipeline([source, ...transforms, out] as unknown as [Readable, NodeJS.WritableStream]);
    written = out.bytesWritten;
    const fd = fs.openSync(temp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, target);
    return written;
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw withContext(err, `cannot write ${target}`);
  }
}
