// vdocker's streams back into the runtime's shapes: an attach (hijacked, multiplexed or raw with a
// tty) into Stdio, and logs with --timestamps into LogEntry values. Everything here reads guest
// bytes: frames are bounded (vdocker-client's demux), time stamps are checked, a malformed line is
// dropped rather than trusted.
import type { Socket } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import type { LogEntry, Stdio } from '../runtime.ts';
import { demux } from './vdocker-client.ts';

/** Stdio over a hijacked connection; ending stdin half-closes it (the guest closes the process's stdin). */
export function stdioOver(socket: Socket, head: Buffer, o: { tty: boolean; stdin: boolean }): Stdio {
  const stdout = new PassThrough();
  const stderr = o.tty ? null : new PassThrough();
  const endAll = () => {
    stdout.end();
    stderr?.end();
  };
  socket.on('error', () => undefined);
  if (o.tty) {
    if (head.length) stdout.write(head);
    socket.on('data', (d: Buffer) => stdout.write(d));
    socket.on('end', endAll);
    socket.on('close', endAll);
  } else {
    const src = new PassThrough();
    demux(src, (n, data) => (n === 1 ? stdout : stderr!).write(data), endAll);
    if (head.length) src.write(head);
    socket.pipe(src);
    socket.on('close', () => src.end());
  }
  // the reader going away (krd's client left) closes the connection
  stdout.on('close', () => socket.destroy());
  const stdin = o.stdin
    ? new Writable({
        write(chunk: Buffer, _enc, cb) {
          if (socket.destroyed) return cb();
          socket.write(chunk, () => cb());
        },
        final(cb) {
          if (!socket.destroyed) socket.end();
          cb();
        },
      })
    : null;
  if (!o.stdin) socket.end(); // nothing to send: half-close our side at once
  return { stdin, stdout, stderr };
}

const STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/;

/** "2026-11-25T18:00:00.123456789Z data" → an entry (null when the stamp is not one). */
export function entryOf(stream: 'stdout' | 'stderr', chunk: Buffer): LogEntry | null {
  const sp = chunk.indexOf(0x20);
  if (sp < 20 || sp > 40) return null;
  const m = STAMP.exec(chunk.subarray(0, sp).toString('latin1'));
  if (!m) return null;
  const nanos = Number((m[2] ?? '').padEnd(9, '0'));
  const time = new Date(`${m[1]}.${String(Math.floor(nanos / 1e6)).padStart(3, '0')}Z`);
  if (!Number.isFinite(time.getTime())) return null;
  return { stream, time, nanos, data: Buffer.from(chunk.subarray(sp + 1)) };
}

/** A raw (tty) log stream with time stamps: one entry per line, each line starting with its stamp. */
export function* ttyEntries(text: Buffer): Generator<LogEntry> {
  let start = 0;
  for (let nl = text.indexOf(0x0a); nl >= 0; nl = text.indexOf(0x0a, start)) {
    const e = entryOf('stdout', text.subarray(start, nl + 1));
    if (e) yield e;
    start = nl + 1;
  }
}
