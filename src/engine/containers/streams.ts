// docker's stream formats: without a tty, 8-byte headers [stream, 0, 0, 0, uint32 BE length]
// before each chunk (1 stdout, 2 stderr); with a tty, the raw bytes.
import type { Duplex, Readable, Writable } from 'node:stream';
import type { LogEntry, Stdio } from '../../runtime/runtime.ts';
import { DetachScanner } from './detach-keys.ts';

export function frame(stream: 1 | 2, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}

/** RFC 3339 with a fixed nine-digit fraction, as docker logs --timestamps prints. */
export function logStamp(e: LogEntry): string {
  return e.time.toISOString().replace(/\.\d{3}Z$/, `.${String(e.nanos).padStart(9, '0')}Z`);
}

export interface LogFormat {
  tty: boolean;
  stdout: boolean;
  stderr: boolean;
  timestamps: boolean;
}

/** Log entries onto out in docker's format; resolves when they are written (or out went away). */
export async function writeLogs(out: Writable, entries: AsyncIterable<LogEntry>, f: LogFormat): Promise<void> {
  for await (const e of entries) {
    if (out.destroyed) return;
    if (e.stream === 'stdout' ? !f.stdout : !f.stderr) continue;
    const data = f.timestamps ? Buffer.concat([Buffer.from(`${logStamp(e)} `), e.data]) : e.data;
    const chunk = f.tty ? data : frame(e.stream === 'stdout' ? 1 : 2, data);
    if (!out.write(chunk)) await new Promise((r) => (out.once('drain', r), out.once('close', r)));
  }
}

export interface AttachOptions {
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Closing the client's stdin closes the container's (docker run -i). */
  stdinOnce: boolean;
  /** When given, the connection ends only once this has settled too (an exec's recorded exit). */
  exited?: Promise<unknown>;
  /** The detach sequence (detach-keys.ts): the connection ends there, the process runs on. */
  detachKeys?: Buffer;
  onDetach?: () => void;
}

/**
 * Joins a hijacked connection and a process's streams: client bytes (after `head`) go to its
 * stdin, a client half-close ends stdin when stdinOnce; output goes back framed (raw with a
 * tty) and the connection ends when the output does (and `exited` has settled).
 */
export function pumpAttach(conn: Duplex, head: Buffer, stdio: Stdio, o: AttachOptions): void {
  const stdin = o.stdin ? stdio.stdin : null;
  if (stdin) {
    stdin.on('error', () => undefined);
    const scanner = new DetachScanner(o.detachKeys ?? Buffer.alloc(0));
    let detached = false;
    const input = (d: Buffer) => {
      if (detached) return;
      const { forward, detach } = scanner.push(d);
      if (forward.length) stdin.write(forward);
      if (!detach) return;
      detached = true;
      o.onDetach?.();
      conn.end();
    };
    if (head.length) input(head);
    conn.on('data', input);
    // as dockerd: never with a tty (the CLI leaves a tty session on its own detach keys, and the
    // shell must live on), nor after a detach
    conn.on('end', () => (o.stdinOnce && !o.tty && !detached ? stdin.end() : undefined));
  } else {
    conn.resume();
  }
  const pipes: Promise<void>[] = [];
  const pump = (src: Readable | null, n: 1 | 2, wanted: boolean) => {
    if (!src) return;
    pipes.push(
      new Promise<void>((resolve) => {
        src.on('data', (d: Buffer) => {
          if (wanted && !conn.destroyed && !conn.writableEnded) conn.write(o.tty ? d : frame(n, d));
        });
        src.once('end', () => resolve());
        src.once('close', () => resolve());
        src.once('error', () => resolve());
      }),
    );
  };
  pump(stdio.stdout, 1, o.stdout);
  pump(stdio.stderr, 2, o.stderr);
  void Promise.all([...pipes, o.exited?.catch(() => undefined)]).then(() => {
    if (!conn.destroyed) conn.end();
  });
  conn.on('error', () => undefined);
  conn.on('close', () => {
    stdio.stdout.destroy();
    stdio.stderr?.destroy();
    if (stdin && !stdin.writableEnded) stdin.destroy();
  });
}
