// One process under a krd-shim (native/krd-shim.c): talks to it through its state dir — the
// attach socket for start/kill/resize/streams, the exit file for the status. Nothing is held in
// memory, so a fresh object (after krd restarted) works as well as the one that created it.
import { connect, type Socket } from 'node:net';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { KrError } from '../../util/errors.ts';
import { signalName, signalNumber } from '../signals.ts';
import type { ExitStatus, ProcessState, RuntimeProcess, Stdio } from '../runtime.ts';

const T_STDIN = 0, T_STDOUT = 1, T_STDERR = 2, T_EXIT = 3, T_CLOSE_STDIN = 4, T_RESIZE = 5, T_SIGNAL = 6, T_START = 8, T_STARTED = 9;

function frame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

export function parseExit(text: string): ExitStatus {
  const [code, sig, ms] = text.trim().split(' ').map(Number);
  const out: ExitStatus = { exitCode: code, finishedAt: new Date(ms) };
  if (sig) out.signal = signalName(sig);
  return out;
}

export class ShimProcess implements RuntimeProcess {
  readonly id: string;
  readonly dir: string;
  readonly tty: boolean;
  readonly openStdin: boolean;

  constructor(id: string, dir: string, opts: { tty: boolean; openStdin: boolean }) {
    this.id = id;
    this.dir = dir;
    this.tty = opts.tty;
    this.openStdin = opts.openStdin;
  }

  async exitStatus(): Promise<ExitStatus | undefined> {
    const text = await readFile(join(this.dir, 'exit'), 'utf8').catch(() => undefined);
    return text ? parseExit(text) : undefined;
  }

  async pid(): Promise<number | undefined> {
    const text = await readFile(join(this.dir, 'pid'), 'utf8').catch(() => undefined);
    return text ? Number(text.trim()) : undefined;
  }

  /** A connection to the shim, or null when it is gone (the process has exited). */
  private connectShim(): Promise<Socket | null> {
    const full = join(this.dir, 'sock');
    if (Buffer.byteLength(full) <= 100) return connectTo(full);
    // longer than sun_path (108 bytes): reach it through an open fd of its directory. The socket
    // is handed on without waiting for that fd's close: during the wait the shim could end the
    // connection, and a 'close' emitted before the caller listens would never be seen.
    return open(this.dir, 'r').then(
      (dir) =>
        connectTo(`/proc/self/fd/${dir.fd}/sock`).then((sock) => {
          void dir.close().catch(() => undefined);
          return sock;
        }),
      () => null,
    );
  }

  private async send(type: number, payload?: Buffer): Promise<boolean> {
    const sock = await this.connectShim();
    if (!sock) return false;
    await new Promise<void>((resolve) => sock.end(frame(type, payload), () => resolve()));
    sock.destroy();
    return true;
  }

  async start(): Promise<void> {
    if (await this.exitStatus()) throw new KrError('conflict', `${this.id} has already run; create it again`);
    const sock = await this.connectShim();
    if (!sock) throw new KrError('conflict', `${this.id}: its supervisor is gone`);
    // returns once the command has been exec'd, so state() says running from here on
    await new Promise<void>((resolve) => {
      let buf: Buffer = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 5) {
          const len = buf.readUInt32BE(1);
          if (buf.length < 5 + len) break;
          if (buf[0] === T_STARTED || buf[0] === T_EXIT) return resolve();
          buf = buf.subarray(5 + len);
        }
      });
      sock.once('close', () => resolve());
      sock.once('error', () => resolve());
      sock.write(frame(T_START));
    });
    sock.destroy();
  }

  async kill(signal: string | number): Promise<void> {
    const n = signalNumber(signal);
    if (!(await this.send(T_SIGNAL, Buffer.from([n])))) throw new KrError('conflict', `${this.id} is not running`);
  }

  async resize(rows: number, cols: number): Promise<void> {
    const b = Buffer.alloc(4);
    b.writeUInt16BE(rows, 0);
    b.writeUInt16BE(cols, 2);
    if (!(await this.send(T_RESIZE, b))) throw new KrError('conflict', `${this.id} is not running`);
  }

  async state(): Promise<ProcessState> {
    // both files at once: each read is a round trip through the thread pool (start, ps, wait…)
    const [exit, pid] = await Promise.all([this.exitStatus(), this.pid()]);
    if (exit) return { status: 'exited', exit };
    // before start the child still runs the shim's code (its comm is krd-shim); after exec it is the command
    return { status: pid !== undefined && (await isShim(pid)) ? 'created' : 'running', pid };
  }

  /** Streams of the process from now on; `wait` on the socket closing gives the exit. */
  async attach(): Promise<Stdio> {
    const sock = await this.connectShim();
    const stdout = new PassThrough();
    const stderr = this.tty ? null : new PassThrough();
    const endAll = () => {
      stdout.end();
      stderr?.end();
    };
    if (!sock) {
      endAll();
      return { stdin: null, stdout, stderr };
    }
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 5) {
        const len = buf.readUInt32BE(1);
        if (buf.length < 5 + len) break;
        const type = buf[0];
        const body = buf.subarray(5, 5 + len);
        buf = buf.subarray(5 + len);
        if (type === T_STDOUT) stdout.write(body);
        else if (type === T_STDERR) (stderr ?? stdout).write(body);
        else if (type === T_EXIT) endAll();
      }
    });
    sock.on('close', endAll);
    sock.on('error', endAll);
    // stdin goes over a connection of its own: a write to a connection the shim has closed (the
    // process exited meanwhile) fails with EPIPE, and node then drops what was still unread on it —
    // the process's last output and its exit frame
    let input: Promise<Socket | null> | null = null;
    const inputSock = () =>
      (input ??= this.connectShim().then((s) => {
        s?.on('error', () => undefined);
        return s;
      }));
    const stdin = this.openStdin
      ? new Writable({
          write(chunk: Buffer, _enc, cb) {
            void inputSock().then((s) => (s && !s.destroyed ? s.write(frame(T_STDIN, chunk), () => cb()) : cb()));
          },
          final(cb) {
            // stdin ends; stdout keeps flowing on its own connection
            void inputSock().then((s) => (s && !s.destroyed ? s.end(frame(T_CLOSE_STDIN), () => cb()) : cb()));
          },
        })
      : null;
    stdout.once('close', () => void input?.then((s) => s?.destroy()));
    return { stdin, stdout, stderr };
  }

  async delete(opts: { force?: boolean } = {}): Promise<void> {
    if (!(await this.exitStatus())) {
      if (!opts.force) throw new KrError('conflict', `${this.id} is still running`);
      await this.kill('SIGKILL').catch(() => undefined);
      await this.wait().catch(() => undefined);
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  async wait(): Promise<ExitStatus> {
    for (;;) {
      const done = await this.exitStatus();
      if (done) return done;
      const sock = await this.connectShim();
      if (sock) {
        sock.resume();
        if (!sock.closed) await new Promise((resolve) => sock.once('close', resolve));
        continue;
      }
      // no socket and no exit file: the shim is between the two, or died
      const pid = await this.pid();
      if (pid !== undefined && !(await stat(`/proc/${pid}`).then(() => true, () => false)) && !(await this.exitStatus())) {
        await new Promise((r) => setTimeout(r, 20));
        if (!(await this.exitStatus())) throw new KrError('unavailable', `${this.id}: its supervisor died without an exit status`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

function connectTo(path: string): Promise<Socket | null> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => resolve(sock));
    sock.once('error', () => resolve(null));
  });
}

async function isShim(pid: number): Promise<boolean> {
  const exe = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
  return exe.trim() === 'krd-shim';
}
