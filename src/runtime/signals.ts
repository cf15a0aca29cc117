// Signal names and numbers as docker takes them: "SIGTERM", "TERM", "15" or 15.
import { constants } from 'node:os';
import { KrError } from '../util/errors.ts';

export function signalNumber(signal: string | number): number {
  if (typeof signal === 'number') return signal;
  const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`).toUpperCase() as keyof typeof constants.signals;
  const n = constants.signals[name] ?? (/^\d+$/.test(signal) ? Number(signal) : undefined);
  if (n === undefined) throw new KrError('invalid', `unknown signal ${signal}`);
  return n;
}

export function signalName(n: number): string | undefined {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
}

