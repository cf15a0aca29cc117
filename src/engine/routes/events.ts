// GET /events: docker events — one JSON object per line, the kept events of the since/until
// window first, then live ones until `until` passes or the client goes away.
import { KrError } from '../../util/errors.ts';
import type { EngineContext } from '../context.ts';
import { checkEventFilters, eventJson, type EngineEvent } from '../events/service.ts';
import { queryFilters, type Router } from '../router.ts';

/** docker's timestamps: "seconds[.nanoseconds]" as the CLI sends them, or an RFC 3339 date. */
export function parseEventTime(name: string, v: string | null): bigint | undefined {
  if (v === null || v === '') return undefined;
  const m = /^(-?\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (m) return BigInt(m[1]) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new KrError('invalid', `invalid value for ${name}: ${JSON.stringify(v)}`);
  return BigInt(ms) * 1_000_000n;
}

export function eventRoutes(router: Router, ctx: EngineContext): void {
  router.add('GET', /^\/events$/, ({ req, res, query }) => {
    const filters = queryFilters(query);
    checkEventFilters(filters);
    const sinceNano = parseEventTime('since', query.get('since'));
    const untilNano = parseEventTime('until', query.get('until'));
    if (sinceNano !== undefined && untilNano !== undefined && untilNano < sinceNano) throw new KrError('invalid', 'until must be after since');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const write = (e: EngineEvent) => {
      if (!res.writableEnded && !res.destroyed) res.write(eventJson(e));
    };
    const { past, unsubscribe } = ctx.events.subscribe({ sinceNano, untilNano, filters }, write);
    for (const e of past) write(e);
    let timer: NodeJS.Timeout | undefined;
    const end = () => {
      unsubscribe();
      clearTimeout(timer);
      if (!res.writableEnded) res.end();
    };
    req.socket.once('close', end);
    res.once('close', end);
    if (untilNano !== undefined) {
      const left = Number(untilNano / 1_000_000n) - Date.now();
      if (left <= 0) end();
      else if (left < 2 ** 31) timer = setTimeout(end, left);
    }
  });
}
