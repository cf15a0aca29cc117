// Writing a list of buffers in full: writev may write less than asked (rarely, for regular
// files) and takes at most IOV_MAX buffers a call, so both continue where the last call stopped.
// Without `position` the bytes go at the file's current offset.
import { writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

const IOV_MAX = 1024;

export async function writeAll(handle: FileHandle, buffers: Uint8Array[], position?: number): Promise<void> {
  let rest = buffers;
  let pos = position;
  while (rest.length) {
    const batch = firstBatch(rest);
    const { bytesWritten } = await handle.writev(batch, pos);
    if (pos !== undefined) pos += bytesWritten;
    if (bytesWritten === byteLength(batch) && batch === rest) return;
    rest = skip(rest, bytesWritten);
  }
}

/** The same, synchronously on a descriptor. */
export function writeAllSync(fd: number, buffers: Uint8Array[], position?: number): void {
  let rest = buffers;
  let pos = position;
  while (rest.length) {
    const batch = firstBatch(rest);
    const written = writevSync(fd, batch, pos);
    if (pos !== undefined) pos += written;
    if (written === byteLength(batch) && batch === rest) return;
    rest = skip(rest, written);
  }
}

const firstBatch = (buffers: Uint8Array[]): Uint8Array[] => (buffers.length > IOV_MAX ? buffers.slice(0, IOV_MAX) : buffers);
const byteLength = (buffers: Uint8Array[]): number => buffers.reduce((n, b) => n + b.length, 0);

/** `buffers` without their first `bytes` bytes. */
function skip(buffers: Uint8Array[], bytes: number): Uint8Array[] {
  let left = bytes;
  const rest: Uint8Array[] = [];
  for (const b of buffers) {
    if (left >= b.length) left -= b.length;
    else {
      rest.push(left ? b.subarray(left) : b);
      left = 0;
    }
  }
  return rest;
}
