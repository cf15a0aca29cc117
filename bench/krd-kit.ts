// Pieces of the krd benchmark: Engine API calls over krd's unix socket, a `crun run` baseline
// runner, and a spawn that reports instead of throwing (the concurrency bench counts failures).
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { Duplex } from 'node:stream';

export interface ApiAnswer {
  status: number;
  body: string;
}

/** One Engine API client on a unix socket, keeping its connections alive as the docker CLI does. */
export class Api {
  readonly socket: string;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(socket: string) {
    this.socket = socket;
  }

  call(method: string, path: string, body?: unknown): Promise<ApiAnswer> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: http.OutgoingHttpHeaders = data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {};
      const req = http.request({ socketPath: this.socket, agent: this.agent, method, path: `/v1.47${path}`, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  /** The call, which must answer `ok` (a status or a list of them); its JSON body otherwise. */
  async ok<T = unknown>(method: string, path: string, body?: unknown, ok: number[] = [200, 201, 204]): Promise<T> {
    const a = await this.call(method, path, body);
    if (!ok.includes(a.status)) throw new Error(`${method} ${path}: ${a.status} ${a.body.trim()}`);
    return (a.body && /^[[{]/.test(a.body) ? JSON.parse(a.body) : a.body) as T;
  }

  /**
   * POST wait, resolved once krd has answered its head (the waiter is registered), so a start
   * sent after it cannot race it; `exited` resolves with the exit code.
   */
  waitFor(id: string, condition = 'next-exit'): Promise<{ exited: Promise<number> }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socket, agent: this.agent, method: 'POST', path: `/v1.47/containers/${id}/wait?condition=${condition}` }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`wait ${id}: ${res.statusCode}`));
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        resolve({ exited: new Promise((done, fail) => res.on('end', () => (text ? done((JSON.parse(text) as { StatusCode: number }).StatusCode) : fail(new Error(`wait ${id}: no answer`))))) });
      });
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * GET logs?follow=1 or a hijacked attach of a container, on its own connection. Resolves once
   * the answer's head is in (the stream is live); `first` resolves at its first body byte.
   */
  openStream(id: string, how: 'logs' | 'attach'): Promise<{ first: Promise<bigint>; ended: Promise<void>; close(): void }> {
    return new Promise((resolve, reject) => {
      let gotFirst: (t: bigint) => void = () => {};
      const first = new Promise<bigint>((r) => (gotFirst = r));
      let gotEnd: () => void = () => {};
      const ended = new Promise<void>((r) => (gotEnd = r));
      const onData = (d: Buffer) => d.length > 0 && gotFirst(process.hrtime.bigint());
      const q = 'stdout=1&stderr=1';
      if (how === 'logs') {
        const req = http.request({ socketPath: this.socket, method: 'GET', path: `/v1.47/containers/${id}/logs?follow=1&${q}` }, (res) => {
          res.on('data', onData);
          res.on('end', gotEnd);
          res.on('close', gotEnd);
          resolve({ first, ended, close: () => req.destroy() });
        });
        req.on('error', reject);
        req.end();
        return;
      }
      const req = http.request({
        socketPath: this.socket,
        method: 'POST',
        path: `/v1.47/containers/${id}/attach?stream=1&${q}`,
        headers: { Connection: 'Upgrade', Upgrade: 'tcp' },
      });
      req.on('upgrade', (_res, conn: Duplex, head: Buffer) => {
        if (head.length) onData(head);
        conn.on('data', onData);
        conn.on('error', () => undefined);
        conn.on('end', gotEnd);
        conn.on('close', gotEnd);
        resolve({ first, ended, close: () => conn.destroy() });
      });
      req.on('response', (res) => reject(new Error(`attach: ${res.statusCode} without an upgrade`)));
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * `crun run` of a bundle, timed from here: one long-lived shell in a private mount namespace
 * without /sys/fs/cgroup/unified (crun 1.8 refuses this machine's hybrid layout otherwise) runs
 * crun once per line it reads and answers with crun's exit status. So each run costs one
 * fork+exec of crun, as a spawn from Node would, and the namespace setup is paid once.
 */
export class CrunRunner {
  private readonly proc: ChildProcess;
  private waiting: ((line: string) => void)[] = [];
  private buf = '';
  private n = 0;

  constructor(bundle: string, stateRoot: string) {
    const script =
      'umount /sys/fs/cgroup/unified 2>/dev/null; ' +
      'while read id; do crun --root "$1" run -b "$2" "$id" </dev/null >/dev/null 2>>"$1/stderr"; echo "$?"; done';
    this.proc = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', stateRoot, bundle], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  async run(): Promise<void> {
    const status = await new Promise<string>((resolve) => {
      this.waiting.push(resolve);
      this.proc.stdin!.write(`bench-${process.pid}-${this.n++}\n`);
    });
    if (status !== '0') throw new Error(`crun run exited ${status} (see its stderr file in the state root)`);
  }

  close(): void {
    this.proc.stdin!.end();
  }
}

/** Runs a command to its end; never throws (failures are counted by the caller). */
export function spawnResult(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string; seconds: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (err) => resolve({ code: null, stderr: String(err), seconds: 0 }));
    p.on('close', (code) => resolve({ code, stderr: stderr.trim(), seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
  });
}

/** Maps items with at most `limit` calls in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}
