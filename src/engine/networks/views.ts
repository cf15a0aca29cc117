// docker's shapes of a network (GET /networks, /networks/{id}) and the filters of
// `docker network ls` / `network prune`.
import type { NetworkRecord } from './records.ts';

export function networkView(n: NetworkRecord, userDefined: boolean, containers: Record<string, object> = {}): object {
  return {
    Name: n.name,
    Id: n.id,
    Created: new Date(n.created).toISOString(),
    Scope: 'local',
    Driver: n.driver,
    EnableIPv4: true,
    EnableIPv6: false,
    IPAM: n.ipam,
    Internal: n.internal,
    Attachable: n.attachable,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: n.options,
    Labels: userDefined ? n.labels : {},
  };
}

function labelMatches(labels: Record<string, string>, v: string): boolean {
  const eq = v.indexOf('=');
  return eq < 0 ? v in labels : labels[v.slice(0, eq)] === v.slice(eq + 1);
}

/** ls: driver, id, label, name, scope, type, dangling; prune: label, label!, until (prune=true). */
export function matchesNetworkFilters(n: NetworkRecord, filters: Map<string, string[]>, userDefined: boolean, inUse: boolean, prune = false): boolean {
  for (const [key, values] of filters) {
    const any = (pred: (v: string) => boolean) => values.some(pred);
    if (key === 'label' && !values.every((v) => labelMatches(n.labels, v))) return false;
    if (key === 'label!' && values.some((v) => labelMatches(n.labels, v))) return false;
    if (key === 'until' && !any((v) => n.created < untilMs(v))) return false;
    if (prune) continue;
    if (key === 'driver' && !any((v) => v === n.driver)) return false;
    if (key === 'id' && !any((v) => n.id.startsWith(v))) return false;
    if (key === 'name' && !any((v) => n.name.includes(v))) return false;
    if (key === 'scope' && !any((v) => v === 'local')) return false;
    if (key === 'type' && !any((v) => (v === 'custom') === userDefined)) return false;
    if (key === 'dangling' && !any((v) => (v === 'true' || v === '1') === !inUse && userDefined)) return false;
  }
  return true;
}

/** docker's until: a unix time or a duration back from now ("10m", "24h"). */
function untilMs(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const m = /^(\d+)(s|m|h)$/.exec(v);
  if (m) return Date.now() - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
  const t = Date.parse(v);
  return Number.isNaN(t) ? Date.now() : t;
}
