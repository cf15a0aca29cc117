// COPY and ADD, second half: planned entries become a tar stream that the hardened extractor
// writes into the image's root. Destinations are first resolved the way the image sees them
// (symlinks followed inside the root, as docker does: /bin → usr/bin), so the extractor, which
// never writes through a symlink, gets real directories only.
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import zlib from 'node:zlib';
import { extractTar } from '../image/extract.ts';
import { encodeHeader, END_OF_ARCHIVE, padding } from '../image/tar/tar-writer.ts';
import { makeMountPoint, resolveInRoot } from '../bali/run/mount-points.ts';
import { fileHeader, type PlannedEntry } from './copy-plan.ts';

const binary = (p: string) => Buffer.from(p, 'utf8').toString('latin1'); // tar paths are byte strings

async function* tarOf(root: string, entries: PlannedEntry[]): AsyncGenerator<Buffer> {
  const created = new Set<string>();
  for (const e of entries) {
    const parent = resolveInRoot(root, path.posix.dirname(e.dest));
    // Parents the image does not have yet are created root-owned 0755 (or with --chown's owner).
    const missing: string[] = [];
    for (let p = parent; p !== root && !fs.existsSync(p) && !created.has(p); p = path.dirname(p)) missing.unshift(p);
    for (const m of missing) {
      created.add(m);
      yield encodeHeader({ ...fileHeader(0, 0o755, e.header, 0, 'dir'), path: binary(path.relative(root, m)) });
    }
    const rel = path.join(path.relative(root, parent), path.posix.basename(e.dest));
    if (e.header.type === 'dir') created.add(path.join(root, rel));
    yield encodeHeader({ ...e.header, path: binary(rel) });
    if (e.header.type !== 'file') continue;
    if (e.content) yield e.content;
    else if (e.hostPath) {
      let left = e.header.size;
      for await (const chunk of fs.createReadStream(e.hostPath, { highWaterMark: 1 << 20 })) {
        const c = (chunk as Buffer).subarray(0, Math.max(0, left));
        left -= c.length;
        yield c;
      }
      if (left > 0) yield Buffer.alloc(left); // the file shrank while we read: keep the tar aligned
    }
    yield padding(e.header.size);
  }
  yield END_OF_ARCHIVE;
}

export async function applyCopy(root: string, entries: PlannedEntry[]): Promise<void> {
  await extractTar(Readable.from(tarOf(root, entries)), root, { allowDevices: false });
}

/** ADD of a local archive: its contents are unpacked into DEST (gzip, bzip2, xz or plain tar). */
export async function applyArchive(root: string, destInside: string, archive: string): Promise<void> {
  const dest = makeMountPoint(root, destInside, 'dir');
  const head = Buffer.alloc(6);
  const fd = fs.openSync(archive, 'r');
  fs.readSync(fd, head, 0, 6, 0);
  fs.closeSync(fd);
  const raw = fs.createReadStream(archive, { highWaterMark: 1 << 20 });
  let stream: Readable = raw;
  if (head[0] === 0x1f && head[1] === 0x8b) stream = raw.pipe(zlib.createGunzip());
  else if (head.subarray(0, 3).toString('latin1') === 'BZh' || head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
    const tool = head[0] === 0x42 ? 'bzip2' : 'xz';
    const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] });
    raw.pipe(child.stdin);
    stream = child.stdout;
  }
  await extractTar(stream, dest, { allowDevices: false });
}

/** Tells whether ADD should unpack a local file: a recognized (compressed) tar archive. */
export function isLocalArchive(file: string): boolean {
  const head = Buffer.alloc(512);
  const fd = fs.openSync(file, 'r');
  const n = fs.readSync(fd, head, 0, 512, 0);
  fs.closeSync(fd);
  if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
  if (n >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return true;
  if (n >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true;
  return n === 512 && head.subarray(257, 262).toString('latin1') === 'ustar';
}
