// An exec in a pod, through vdocker's exec API. docker's API starts an exec and attaches to it in
// one call (POST /exec/{id}/start, hijacked), while the runtime seam attaches first and starts
// after: attach() hands out streams at once and start() connects them to the hijacked start.
import { PassThrough } from 'node:stream';
import { KrError } from '../../util/errors.ts';
import type { ExitStatus, ProcessState, RuntimeProcess, Stdio } from '../runtime.ts';
import { signalName } from '../signals.ts';
import { call, callJson, hijack, type Endpoint } from './vdocker-client.ts';
import { stdioOver } from './streams.ts';

interface ExecInspect {
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
}

export function checkExecInspect(v: unknown): ExecInspect {
  const o = v as Record<string, unknown>;
  if (!o || typeof o !== 'object') throw new Error('not an object');
  if (typeof o.Running !== 'boolean') throw new Error('Running');
  if (o.ExitCode !== null && !Number.isSafeInteger(o.ExitCode)) throw new Error('ExitCode');
  if (o.Pid !== undefined && !Number.isSafeInteger(o.Pid)) throw new Error('Pid');
  return { Running: o.Running, ExitCode: o.ExitCode as number | null, Pid: (o.Pid as number) ?? 0 };
}

/** 128+n is how docker reports a death by signal n. */
export function exitOf(code: number, finishedAt: Date): ExitStatus {
  const out: ExitStatus = { exitCode: code, finishedAt };
  const sig = code > 128 && code <= 128 + 64 ? signalName(code - 128) : undefined;
  if (sig) out.signal = sig;
  return out;
}

export class VmExec implements RuntimeProcess {
  readonly id: string;
  private readonly ep: Endpoint;
  /** vdocker's id for it. */
  private readonly execId: string;
  private readonly tty: boolean;
  private readonly openStdin: boolean;
  private attached: { stdio: Stdio; stdinPipe: PassThrough } | null = null;
  private streamDone: Promise<void> | null = null;
  private exit: ExitStatus | null = null;
  private deleted = false;
  private readonly forget: () => Promise<void>;

  /** `forget` removes what lets a restarted krd find it again. */
  constructor(id: string, ep: Endpoint, execId: string, o: { tty: boolean; openStdin: boolean }, forget: () => Promise<void>) {
    this.id = id;
    this.forget = forget;
    this.ep = ep;
    this.execId = execId;
    this.tty = o.tty;
    this.openStdin = o.openStdin;
  }

  async attach(): Promise<Stdio> {
    if (this.attached) throw new KrError('conflict', `exec ${this.id} is already attached`);
    const stdinPipe = new PassThrough();
    const stdio: Stdio = { stdin: this.openStdin ? stdinPipe : null, stdout: new PassThrough(), stderr: this.tty ? null : new PassThrough() };
    this.attached = { stdio, stdinPipe };
    return stdio;
  }

  async start(): Promise<void> {
    const path = `/exec/${this.execId}/start`;
    if (!this.attached) {
      await call(this.ep, 'POST', path, { body: Buffer.from(JSON.stringify({ Detach: true, Tty: this.tty })) });
      return;
    }
    const { socket, head } = await hijack(this.ep, path, Buffer.from(JSON.stringify({ Detach: false, Tty: this.tty })));
    const inner = stdioOver(socket, head, { tty: this.tty, stdin: this.openStdin });
    const { stdio, stdinPipe } = this.attached;
    inner.stdout.pipe(stdio.stdout as PassThrough);
    if (inner.stderr && stdio.stderr) inner.stderr.pipe(stdio.stderr as PassThrough);
    if (inner.stdin) stdinPipe.pipe(inner.stdin);
    this.streamDone = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  private inspect(): Promise<ExecInspect> {
    return callJson(this.ep, 'GET', `/exec/${this.execId}/json`, checkExecInspect);
  }

  async wait(): Promise<ExitStatus> {
    if (this.exit) return this.exit;
    // vdocker ends an attached exec's stream only once its exit code is recorded
    if (this.streamDone) await this.streamDone;
    for (;;) {
      const e = await this.inspect();
      if (!e.Running && e.ExitCode !== null) {
        this.exit ??= exitOf(e.ExitCode, new Date());
        return this.exit;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async state(): Promise<ProcessState> {
    if (this.deleted) throw new KrError('not-found', `no such exec: ${this.id}`);
    const e = await this.inspect();
    if (e.ExitCode !== null && !e.Running) return { status: 'exited', exit: this.exit ?? exitOf(e.ExitCode, new Date()) };
    return { status: e.Running ? 'running' : 'created', pid: e.Pid || undefined };
  }

  async resize(rows: number, cols: number): Promise<void> {
    await call(this.ep, 'POST', `/exec/${this.execId}/resize?h=${rows}&w=${cols}`);
  }

  async kill(): Promise<void> {
    // docker's API has no way to signal an exec; vdocker neither
    throw new KrError('unavailable', `exec ${this.id}: signalling an exec is not supported in a VM pod`);
  }

  /** Forgets it on the host (vdocker keeps its exec records in memory, gone with the pod). */
  async delete(): Promise<void> {
    this.deleted = true;
    await this.forget();
  }
}
