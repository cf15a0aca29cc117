// Starts a krd-shim detached (its own session; it outlives krd) and waits for its one-line
// answer: "ok <pid>" once the process is set up and waiting for start, or "error <why>".
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KrError } from '../../util/errors.ts';

export const SHIM_PATH = fileURLToPath(new URL('../../../build/krd-shim', import.meta.url));

export function spawnShim(args: string[], env: string[]): Promise<number> {
  if (!existsSync(SHIM_PATH)) return Promise.reject(new KrError('unavailable', `${SHIM_PATH} is missing: run make native`));
  const envObj: Record<string, string> = {};
  for (const kv of env) {
    const eq = kv.indexOf('=');
    if (eq > 0) envObj[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(SHIM_PATH, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: envObj });
    let out = '';
    let errText = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (errText += d));
    child.on('error', (err) => reject(new KrError('unavailable', `krd-shim: ${err.message}`)));
    child.stdout.on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const line = out.slice(0, nl);
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      if (line.startsWith('ok ')) resolve(Number(line.slice(3)));
      else reject(new KrError(/not found|No such file/.test(line) ? 'not-found' : 'invalid', line.replace(/^error /, '')));
    });
    child.on('exit', (code) => {
      if (!out.includes('\n')) reject(new KrError('unavailable', `krd-shim exited (${code}) before the container was ready: ${errText.trim()}`));
    });
  });
}
