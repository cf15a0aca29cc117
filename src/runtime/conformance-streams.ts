// Reading what a runtime under the conformance suite (./conformance.ts) hands back: a stream's
// whole text, a stream up to a pattern, and a tar's entries.
import type { Readable } from 'node:stream';
import { readTarStream } from '../image/tar/tar-reader.ts';

export async function collect(stream: Readable | null): Promise<string> {
  if (!stream) return '';
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString();
}

/** Reads a stream until `pattern` shows up (for interactive tests; generous: a TCG guest on a loaded host is slow). */
export async function until(stream: Readable, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; got ${JSON.stringify(seen)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve(seen);
      }
    };
    stream.on('data', onData);
  });
}

/** A tar's entries in order: "name", or "name=content" for a file with content (trimmed). */
export async function tarEntries(tar: Readable): Promise<string[]> {
  const entries: string[] = [];
  for await (const e of readTarStream(tar)) {
    const parts: Buffer[] = [];
    for await (const b of e.data()) parts.push(b);
    const body = Buffer.concat(parts).toString();
    entries.push(e.header.type === 'file' && body ? `${e.header.path}=${body.trim()}` : e.header.path);
  }
  return entries;
}
