// `bali run` options, checked completely before anything changes on the host.
import { KrError } from '../../util/errors.ts';

export interface RunOptions {
  source: string;
  identities: string[];
  identityFiles: string[];
  insecure: boolean;
  /** -e K=V (set) and -e K (copy K from the caller's environment), in order. */
  env: string[];
  volumes: Volume[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  memoryBytes?: number;
  /** Arguments after `--`: they replace the image's Cmd (the Entrypoint stays), as in docker run. */
  command: string[];
}

export interface Volume {
  source: string;
  target: string;
  readOnly: boolean;
}

const units: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** docker's size syntax: 512m, 1g, 1048576. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? units[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new KrError('invalid', `bad size "${text}": use a number with an optional unit (k, m, g)`);
  const bytes = Math.floor(parseFloat(m[1]) * unit);
  if (bytes < 6 * 1024 * 1024) throw new KrError('invalid', `--mem ${text} is too small (at least 6m)`);
  return bytes;
}

export function parseVolume(spec: string): Volume {
  const parts = spec.split(':');
  const [source, target, mode] = parts;
  if (parts.length < 2 || parts.length > 3 || !source || !target) throw new KrError('invalid', `bad volume "${spec}": use SRC:DST[:ro]`);
  if (!source.startsWith('/')) throw new KrError('invalid', `bad volume "${spec}": the source must be an absolute host path`);
  if (!target.startsWith('/')) throw new KrError('invalid', `bad volume "${spec}": the target must be an absolute path inside the image`);
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new KrError('invalid', `bad volume "${spec}": mode must be ro or rw`);
  return { source, target, readOnly: mode === 'ro' };
}

export function parseEnvOption(spec: string): void {
  const name = spec.includes('=') ? spec.slice(0, spec.indexOf('=')) : spec;
  if (!/^[^=\0]+$/.test(name)) throw new KrError('invalid', `bad -e "${spec}": use K=V or K`);
}
