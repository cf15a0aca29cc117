// The on-disk log of a process, as krd-shim writes it: one line per chunk,
// "<RFC 3339 time with nanoseconds> <stdout|stderr> <F|P> <bytes>", F when the chunk ended a
// line (the \n is implied), P for a partial line — the CRI log format. Read here for
// `docker logs` with --since/--until/--tail/--follow/--timestamps.
import { watch, type FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { LogEntry, LogOptions } from './runtime.ts';

export function parseLogLine(line: Buffer): LogEntry | null {
  const s1 = line.indexOf(0x20);
  const s2 = line.indexOf(0x20, s1 + 1);
  if (s1 < 0 || s2 < 0 || line.length < s2 + 2) return null;
  const stamp = line.subarray(0, s1).toString();
  const stream = line.subarray(s1 + 1, s2).toString();
  if (stream !== 'stdout' && stream !== 'stderr') return null;
  const full = line[s2 + 1] === 0x46; // F
  const body = line.subarray(s2 + 3);
  const dot = stamp.indexOf('.');
  const nanos = dot > 0 ? Number(stamp.slice(dot + 1, -1).padEnd(9, '0')) : 0;
  const time = new Date(stamp.slice(0, dot > 0 ? dot : -1) + 'Z');
  time.setUTCMilliseconds(Math.floor(nanos / 1e6));
  return { stream, time, nanos, data: full ? Buffer.concat([body, Buffer.from('\n')]) : Buffer.from(body) };
}

function inWindow(e: LogEntry, opts: LogOptions): boolean {
  if (opts.since && e.time < opts.since) return false;
  if (opts.until && e.time > opts.until) return false;
  return true;
}

/** Entries of the log file; with `follow`, keeps reading until `done()` says the writer exited. */
export async function* readLog(path: string, opts: LogOptions, done: () => Promise<boolean>): AsyncGenerator<LogEntry> {
  let offset = 0;
  let rest = Buffer.alloc(0);
  const readNew = async (): Promise<LogEntry[]> => {
    const size = await stat(path).then((s) => s.size, () => 0);
    if (size <= offset) return [];
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(size - offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      offset += bytesRead;
      const all = Buffer.concat([rest, buf.subarray(0, bytesRead)]);
      const out: LogEntry[] = [];
      let start = 0;
      for (let nl = all.indexOf(0x0a); nl >= 0; nl = all.indexOf(0x0a, start)) {
        const e = parseLogLine(all.subarray(start, nl));
        if (e && inWindow(e, opts)) out.push(e);
        start = nl + 1;
      }
      rest = Buffer.from(all.subarray(start));
      return out;
    } finally {
      await fh.close();
    }
  };
  let first = await readNew();
  if (opts.tail !== undefined && opts.tail >= 0) first = opts.tail === 0 ? [] : first.slice(-opts.tail);
  yield* first;
  if (!opts.follow) return;
  const wake = changes(dirname(path));
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      if (opts.until && Date.now() > opts.until.getTime()) return;
      const finished = await done();
      yield* await readNew();
      if (finished) return;
      await wake.next(FOLLOW_POLL_MS);
    }
  } finally {
    wake.close();
  }
}

/** The slowest a follower notices new output or the exit when no change event comes. */
const FOLLOW_POLL_MS = 200;

/**
 * Wake-ups on any change in the log's directory (inotify): the writer appending to the log and
 * the exit file appearing both land there, so a follower sees its first byte within a
 * millisecond or so of the write instead of after a polling period. The timeout stays as a
 * fallback (a watch can fail, e.g. when the directory is gone).
 */
function changes(dir: string): { next(timeoutMs: number): Promise<void>; close(): void } {
  let pending = false;
  let wakeUp: (() => void) | null = null;
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dir, { persistent: false }, () => {
      pending = true;
      wakeUp?.();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = null;
  }
  return {
    next(timeoutMs) {
      if (pending) {
        pending = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          wakeUp = null;
          pending = false;
          resolve();
        }
        wakeUp = done;
      });
    },
    close() {
      watcher?.close();
    },
  };
}
