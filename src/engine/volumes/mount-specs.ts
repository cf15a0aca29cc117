// A container's mount requests as docker reads them, checked before anything is created:
// HostConfig.Binds (`-v SRC:DST[:MODE]`, SRC a host path or a volume name), HostConfig.Mounts
// (`--mount type=volume|bind|tmpfs,…`), HostConfig.Tmpfs (`--tmpfs DST[:OPTS]`) and the
// Config.Volumes paths (image VOLUMEs and `-v /path`) no other request covers, which become
// anonymous volumes. Messages follow dockerd's.
import { KrError } from '../../util/errors.ts';
import { checkVolumeName } from './names.ts';

export interface MountRequest {
  type: 'volume' | 'bind' | 'tmpfs';
  destination: string;
  /** volume: its name ('' = a new anonymous one); bind: the host path; tmpfs: ''. */
  source: string;
  readonly: boolean;
  /** What inspect shows as Mode and Propagation. */
  mode: string;
  propagation: string;
  /** Do not fill a new volume from the image (nocopy, VolumeOptions.NoCopy). */
  noCopy: boolean;
  /** `-v /host:/x` creates a missing host directory; `--mount type=bind` refuses one. */
  createSource: boolean;
  /** For a volume the request creates: driver, its options, labels. */
  volume?: { driver?: string; options?: Record<string, string>; labels?: Record<string, string> };
  /** tmpfs mount options (flags and size=/mode=…), docker's defaults first. */
  tmpfs?: string[];
  /** Listed in inspect's Mounts (`--tmpfs` ones are not, as with docker). */
  listed: boolean;
}

const MODES = new Set(['rw', 'ro', 'z', 'Z', 'nocopy', 'consistent', 'cached', 'delegated']);
const PROPAGATIONS = new Set(['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate']);
const TMPFS_FLAGS = new Set(['ro', 'rw', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'atime', 'noatime', 'relatime', 'strictatime', 'sync', 'async', 'dirsync']);
const TMPFS_KEYS = new Set(['size', 'mode', 'nr_inodes', 'nr_blocks', 'uid', 'gid', 'huge']);
const TMPFS_DEFAULTS = ['noexec', 'nosuid', 'nodev'];

function mountError(type: string, detail: string): KrError {
  return new KrError('invalid', `invalid mount config for type "${type}": ${detail}`);
}

function checkDestination(type: string, dest: unknown): string {
  if (typeof dest !== 'string' || dest === '') throw mountError(type, 'field Target must not be empty');
  if (!dest.startsWith('/')) throw mountError(type, `invalid mount path: '${dest}' mount path must be absolute`);
  const clean = dest.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  if (clean === '/') throw mountError(type, "invalid specification: destination can't be '/'");
  return clean;
}

/** tmpfs options, checked: docker's defaults, then the request's (later words win in the kernel). */
function tmpfsOptions(words: string[]): string[] {
  for (const w of words) {
    const key = w.split('=')[0];
    if (w.includes('=') ? !TMPFS_KEYS.has(key) : !TMPFS_FLAGS.has(w)) throw new KrError('invalid', `invalid tmpfs option ${JSON.stringify(w)}`);
    if (key === 'size' && !/^size=\d+[kmgKMG%]?$/.test(w)) throw new KrError('invalid', `invalid tmpfs option ${JSON.stringify(w)}`);
    if (key === 'mode' && !/^mode=[0-7]{1,4}$/.test(w)) throw new KrError('invalid', `invalid tmpfs option ${JSON.stringify(w)}`);
  }
  return [...TMPFS_DEFAULTS, ...words];
}

/** One `-v` entry. */
export function parseBindSpec(spec: string): MountRequest {
  const parts = spec.split(':');
  if (parts.length === 1 && spec.startsWith('/')) {
    return { type: 'volume', destination: checkDestination('volume', spec), source: '', readonly: false, mode: '', propagation: '', noCopy: false, createSource: false, listed: true };
  }
  if (parts.length < 2 || parts.length > 3 || parts.some((p, i) => p === '' && i < 2)) throw new KrError('invalid', `invalid volume specification: '${spec}'`);
  const [source, target, modeText = ''] = parts;
  const isBind = source.startsWith('/');
  const type = isBind ? 'bind' : 'volume';
  let destination: string;
  try {
    destination = checkDestination(type, target);
  } catch (err) {
    throw new KrError('invalid', `invalid volume specification: '${spec}': ${(err as Error).message}`);
  }
  const words = modeText ? modeText.split(',') : [];
  let propagation = isBind ? 'rprivate' : '';
  for (const w of words) {
    if (PROPAGATIONS.has(w)) {
      if (!isBind) throw new KrError('invalid', `invalid volume specification: '${spec}': propagation applies to bind mounts only`);
      propagation = w;
    } else if (!MODES.has(w) || (w === 'nocopy' && isBind)) throw new KrError('invalid', `invalid mode: ${modeText}`);
  }
  if (words.includes('ro') && words.includes('rw')) throw new KrError('invalid', `invalid mode: ${modeText}`);
  if (!isBind) checkVolumeName(source);
  return {
    type,
    destination,
    source,
    readonly: words.includes('ro'),
    mode: modeText || (isBind ? '' : 'z'),
    propagation,
    noCopy: words.includes('nocopy'),
    createSource: isBind,
    listed: true,
  };
}

function field(m: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = m[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new KrError('invalid', `${key} must be an object`);
  return v as Record<string, unknown>;
}

/** One HostConfig.Mounts entry. */
export function parseMountObject(raw: unknown): MountRequest {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new KrError('invalid', 'Mounts entries must be objects');
  const m = raw as Record<string, unknown>;
  const type = String(m.Type ?? '');
  if (type !== 'volume' && type !== 'bind' && type !== 'tmpfs') throw mountError(type, 'mount type unknown');
  const destination = checkDestination(type, m.Target);
  const source = m.Source === undefined || m.Source === null ? '' : m.Source;
  if (typeof source !== 'string') throw mountError(type, 'field Source must be a string');
  if (m.ReadOnly !== undefined && m.ReadOnly !== null && typeof m.ReadOnly !== 'boolean') throw mountError(type, 'field ReadOnly must be a boolean');
  const readonly = m.ReadOnly === true;
  const bindOpts = field(m, 'BindOptions');
  const volumeOpts = field(m, 'VolumeOptions');
  const tmpfsOpts = field(m, 'TmpfsOptions');
  for (const [k, v] of [['BindOptions', bindOpts], ['VolumeOptions', volumeOpts], ['TmpfsOptions', tmpfsOpts]] as const) {
    if (v && !k.toLowerCase().startsWith(type)) throw mountError(type, `field ${k} must not be specified`);
  }
  const base = { type, destination, readonly, noCopy: false, createSource: false, listed: true } as const;
  if (type === 'bind') {
    if (!source) throw mountError(type, 'field Source must not be empty');
    if (!source.startsWith('/')) throw mountError(type, `invalid mount path: '${source}' mount path must be absolute`);
    const propagation = bindOpts?.Propagation ? String(bindOpts.Propagation) : 'rprivate';
    if (!PROPAGATIONS.has(propagation)) throw mountError(type, `invalid propagation mode: ${propagation}`);
    return { ...base, source, mode: '', propagation, createSource: bindOpts?.CreateMountpoint === true };
  }
  if (type === 'tmpfs') {
    if (source) throw mountError(type, 'field Source must not be specified');
    const words: string[] = [];
    const size = tmpfsOpts?.SizeBytes;
    if (size !== undefined && size !== null) {
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw mountError(type, 'field TmpfsOptions.SizeBytes must be a positive integer');
      if (size > 0) words.push(`size=${size}`);
    }
    const mode = tmpfsOpts?.Mode;
    if (mode !== undefined && mode !== null && mode !== 0) {
      if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0) throw mountError(type, 'field TmpfsOptions.Mode must be a file mode');
      words.push(`mode=${(mode & 0o7777).toString(8)}`);
    }
    const extra = tmpfsOpts?.Options;
    if (extra !== undefined && extra !== null) {
      if (!Array.isArray(extra) || !extra.every((o) => Array.isArray(o) && o.length >= 1 && o.length <= 2 && o.every((x) => typeof x === 'string'))) throw mountError(type, 'field TmpfsOptions.Options must be a list of [key] or [key, value]');
      for (const o of extra as string[][]) words.push(o.length === 2 ? `${o[0]}=${o[1]}` : o[0]);
    }
    if (readonly) words.push('ro');
    return { ...base, source: '', mode: '', propagation: '', tmpfs: tmpfsOptions(words) };
  }
  if (source) checkVolumeName(source);
  const driverConfig = volumeOpts ? field(volumeOpts, 'DriverConfig') : undefined;
  const driver = driverConfig?.Name ? String(driverConfig.Name) : undefined;
  const options = driverConfig?.Options as Record<string, string> | undefined;
  const labels = volumeOpts?.Labels as Record<string, string> | undefined;
  for (const [what, map] of [['DriverConfig.Options', options], ['Labels', labels]] as const) {
    if (map !== undefined && map !== null && (typeof map !== 'object' || !Object.values(map).every((x) => typeof x === 'string'))) throw mountError(type, `field VolumeOptions.${what} must be an object of strings`);
  }
  if (volumeOpts?.Subpath) throw mountError(type, 'VolumeOptions.Subpath is not supported');
  return { ...base, source, mode: 'z', propagation: '', noCopy: volumeOpts?.NoCopy === true, volume: { driver, options: options ?? undefined, labels: labels ?? undefined } };
}

/** Every mount of a new container, in docker's order (parents before what is mounted inside them). */
export function parseMountRequests(host: { Binds?: unknown; Mounts?: unknown; Tmpfs?: unknown }, volumes: string[]): MountRequest[] {
  const out: MountRequest[] = [];
  const add = (m: MountRequest) => {
    if (out.some((o) => o.destination === m.destination)) throw new KrError('invalid', `Duplicate mount point: ${m.destination}`);
    out.push(m);
  };
  const binds = host.Binds ?? [];
  if (!Array.isArray(binds) || !binds.every((b) => typeof b === 'string')) throw new KrError('invalid', 'Binds must be a list of strings');
  for (const b of binds as string[]) add(parseBindSpec(b));
  const mounts = host.Mounts ?? [];
  if (!Array.isArray(mounts)) throw new KrError('invalid', 'Mounts must be a list');
  for (const m of mounts) add(parseMountObject(m));
  const tmpfs = host.Tmpfs ?? {};
  if (typeof tmpfs !== 'object' || Array.isArray(tmpfs)) throw new KrError('invalid', 'Tmpfs must be an object');
  for (const [dest, opts] of Object.entries(tmpfs as Record<string, unknown>)) {
    if (typeof opts !== 'string') throw new KrError('invalid', 'Tmpfs options must be strings');
    const words = opts ? opts.split(',').filter(Boolean) : [];
    add({ type: 'tmpfs', destination: checkDestination('tmpfs', dest), source: '', readonly: words.includes('ro'), mode: '', propagation: '', noCopy: false, createSource: false, tmpfs: tmpfsOptions(words), listed: false });
  }
  for (const path of volumes) {
    const destination = checkDestination('volume', path);
    if (out.some((o) => o.destination === destination)) continue;
    out.push({ type: 'volume', destination, source: '', readonly: false, mode: '', propagation: '', noCopy: false, createSource: false, listed: true });
  }
  // docker mounts by path depth, so /a is in place before /a/b lands on it
  const depth = (p: string) => p.split('/').length;
  return out.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i).map(({ m }) => m);
}
