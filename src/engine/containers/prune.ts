// docker container prune's filters: until (a time stamp, a date or a Go duration before now),
// label and label! (key or key=value).
import { KrError } from '../../util/errors.ts';
import type { ContainerRecord } from './records.ts';

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** docker's GetTimestamp: "1700000000[.5]", an RFC 3339 date (or a prefix of one), or "10m"/"1h30m" before now (ms). */
export function parseUntil(v: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    let ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * UNITS[m[2]];
    return now - ms;
  }
  // a date without a zone is local time in docker; a zone, when given, wins
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00` : v);
  if (Number.isNaN(t)) throw new KrError('invalid', `failed to parse value as time or duration: "${v}"`);
  return t;
}

function hasLabel(r: ContainerRecord, spec: string): boolean {
  const eq = spec.indexOf('=');
  return eq < 0 ? spec in r.config.Labels : r.config.Labels[spec.slice(0, eq)] === spec.slice(eq + 1);
}

/** A predicate over container records; throws docker's 400 for an unknown filter. */
export function pruneFilter(filters: Map<string, string[]>): (r: ContainerRecord) => boolean {
  for (const k of filters.keys()) if (!['until', 'label', 'label!'].includes(k)) throw new KrError('invalid', `invalid filter '${k}'`);
  const untils = (filters.get('until') ?? []).map((v) => parseUntil(v));
  if (untils.length > 1) throw new KrError('invalid', 'more than one until filter specified');
  return (r) =>
    (untils.length === 0 || r.created < untils[0]) &&
    (filters.get('label') ?? []).every((l) => hasLabel(r, l)) &&
    !(filters.get('label!') ?? []).some((l) => hasLabel(r, l));
}
