// docker's Config.Healthcheck: the request's fields over the image's (a zero or missing field
// inherits), checked as dockerd checks them; ["NONE"] turns an image's check off.
import { KrError } from '../../util/errors.ts';
import type { ContainerConfig as ImageConfig } from '../../image/types.ts';

export interface Healthcheck {
  /** [] inherit, ["NONE"], ["CMD", args…], ["CMD-SHELL", command]. */
  Test: string[];
  /** Nanoseconds; 0 means docker's default. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

const MIN_NANOS = 1_000_000; // dockerd: no duration under 1 ms (0 = the default)
export const DEFAULTS = { Interval: 30e9, Timeout: 30e9, StartPeriod: 0, StartInterval: 5e9, Retries: 3 };

function duration(o: Record<string, unknown>, k: string, what: string): number | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new KrError('invalid', `${k} must be an integer (nanoseconds)`);
  if (v < 0) throw new KrError('invalid', `${what} in Healthcheck cannot be negative`);
  if (v !== 0 && v < MIN_NANOS) throw new KrError('invalid', `${what} in Healthcheck cannot be less than 1ms`);
  return v;
}

function parse(v: unknown): Healthcheck | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new KrError('invalid', 'Healthcheck must be an object');
  const o = v as Record<string, unknown>;
  const test = o.Test ?? [];
  if (!Array.isArray(test) || !test.every((x) => typeof x === 'string')) throw new KrError('invalid', 'Healthcheck.Test must be a list of strings');
  if (test.length > 0 && !['NONE', 'CMD', 'CMD-SHELL'].includes(test[0])) throw new KrError('invalid', `unknown Healthcheck type ${JSON.stringify(test[0])}: NONE, CMD or CMD-SHELL`);
  if ((test[0] === 'CMD' || test[0] === 'CMD-SHELL') && test.length < 2) throw new KrError('invalid', `Healthcheck ${test[0]} needs a command`);
  const retries = o.Retries;
  if (retries !== undefined && retries !== null && (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0)) throw new KrError('invalid', 'Retries in Healthcheck cannot be negative');
  const out: Healthcheck = { Test: test as string[] };
  const fields: [keyof typeof DEFAULTS, string][] = [['Interval', 'Interval'], ['Timeout', 'Timeout'], ['StartPeriod', 'StartPeriod'], ['StartInterval', 'StartInterval']];
  for (const [k, what] of fields) {
    const d = duration(o, k, what);
    if (d !== undefined) out[k] = d;
  }
  if (typeof retries === 'number') out.Retries = retries;
  return out;
}

/** The container's Healthcheck (or undefined when neither side has one). */
export function mergeHealthcheck(request: unknown, image: ImageConfig['Healthcheck']): Healthcheck | undefined {
  const own = parse(request);
  const base = parse(image ?? undefined);
  if (!own) return base;
  if (!base) return own;
  const out: Healthcheck = { ...own, Test: own.Test.length > 0 ? own.Test : base.Test };
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) if (!out[k] && base[k]) out[k] = base[k];
  return out;
}

/** The command a probe runs, or null when the check is off. */
export function probeCommand(hc: Healthcheck | undefined): string[] | null {
  if (!hc || hc.Test.length === 0 || hc.Test[0] === 'NONE') return null;
  if (hc.Test[0] === 'CMD-SHELL') return ['/bin/sh', '-c', hc.Test.slice(1).join(' ')];
  return hc.Test.slice(1);
}
