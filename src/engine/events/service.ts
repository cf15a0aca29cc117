// The event bus behind GET /events (docker events): services publish what happened to containers,
// images, volumes and networks; subscribers get the events kept in a bounded in-memory ring that
// fall in their since/until window, then live ones. Events are not persisted: after a krd restart
// `docker events --since` sees only what happened since (dockerd keeps 256 in memory too).
import { EventEmitter } from 'node:events';
import { KrError } from '../../util/errors.ts';

export type EventType = 'container' | 'image' | 'volume' | 'network' | 'daemon' | 'plugin' | 'service' | 'node' | 'secret' | 'config';

/** docker's events.Message. */
export interface EngineEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  /** Unix seconds. */
  time: number;
  /** Unix nanoseconds (beyond a double's precision: see eventJson). */
  timeNano: bigint;
}

/** One line of GET /events; the legacy status/id/from fields too, which old clients read. */
export function eventJson(e: EngineEvent): string {
  const legacy = e.Type === 'container' || e.Type === 'image' ? { status: e.Action, id: e.Actor.ID, ...(e.Actor.Attributes.image ? { from: e.Actor.Attributes.image } : {}) } : {};
  return JSON.stringify({ ...legacy, ...e, timeNano: 0 }).replace(/"timeNano":0\}$/, `"timeNano":${e.timeNano}}`) + '\n';
}

export interface EventWindow {
  /** Unix nanoseconds, inclusive. */
  sinceNano?: bigint;
  untilNano?: bigint;
  filters?: Map<string, string[]>;
}

const FILTER_KEYS = new Set(['type', 'container', 'image', 'event', 'label', 'volume', 'network', 'daemon', 'scope', 'plugin', 'service', 'node', 'secret', 'config']);

/** Checks the filter keys of a request (docker answers 400 for unknown ones). */
export function checkEventFilters(filters: Map<string, string[]>): void {
  for (const k of filters.keys()) if (!FILTER_KEYS.has(k)) throw new KrError('invalid', `invalid filter '${k}'`);
}

/** "alpine:latest" also matches "alpine" and the other way round, as docker's image filter does. */
function sameImage(want: string, have: string | undefined): boolean {
  if (!have) return false;
  if (want === have) return true;
  const strip = (s: string) => s.replace(/:[^/:@]*$/, '');
  return strip(want) === strip(have) && (!want.includes(':') || !have.includes(':') || want.endsWith(':latest') !== have.endsWith(':latest'));
}

/** docker's event filter: values of one key are OR'ed, keys AND'ed. */
export function matchesEvent(e: EngineEvent, filters: Map<string, string[]>): boolean {
  const attrs = e.Actor.Attributes;
  for (const [key, values] of filters) {
    if (values.length === 0) continue;
    const any = (pred: (v: string) => boolean) => values.some(pred);
    switch (key) {
      case 'type':
        if (!any((v) => v === e.Type)) return false;
        break;
      case 'event':
        // exec actions carry the command ("exec_start: sh -c …"); the filter names the action alone
        if (!any((v) => v === e.Action || e.Action.startsWith(`${v}: `))) return false;
        break;
      case 'container':
        if (e.Type !== 'container' || !any((v) => v === attrs.name || e.Actor.ID.startsWith(v))) return false;
        break;
      case 'image':
        if (!any((v) => (e.Type === 'image' && (e.Actor.ID === v || e.Actor.ID.startsWith(`sha256:${v}`) || sameImage(v, e.Actor.ID))) || sameImage(v, attrs.image) || (e.Type === 'image' && sameImage(v, attrs.name)))) return false;
        break;
      case 'label':
        if (!values.every((v) => {
          const eq = v.indexOf('=');
          return eq < 0 ? v in attrs : attrs[v.slice(0, eq)] === v.slice(eq + 1);
        }))
          return false;
        break;
      case 'scope':
        if (!any((v) => v === e.scope)) return false;
        break;
      default:
        // volume, network, daemon, plugin, …: the object's ID or name
        if (e.Type !== key || !any((v) => v === e.Actor.ID || v === attrs.name || e.Actor.ID.startsWith(v))) return false;
    }
  }
  return true;
}

/** Nanoseconds since the epoch, monotonic within this process (two events never share a stamp). */
let lastNano = 0n;
function nowNano(): bigint {
  const wall = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  lastNano = wall > lastNano ? wall : lastNano + 1n;
  return lastNano;
}

export class EventService {
  private readonly ring: EngineEvent[] = [];
  private readonly capacity: number;
  private readonly live = new EventEmitter();

  constructor(capacity = 1024) {
    this.capacity = capacity;
    this.live.setMaxListeners(0);
  }

  /** Records an event and hands it to every subscriber. Never throws. */
  publish(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): EngineEvent {
    const nano = nowNano();
    const e: EngineEvent = { Type: type, Action: action, Actor: { ID: id, Attributes: attributes }, scope: 'local', time: Number(nano / 1_000_000_000n), timeNano: nano };
    this.ring.push(e);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    this.live.emit('event', e);
    return e;
  }

  /**
   * The kept events in the window, then live ones through `onEvent` until the returned
   * unsubscribe is called. Live events past `untilNano` are not delivered (the caller ends).
   */
  subscribe(w: EventWindow, onEvent: (e: EngineEvent) => void): { past: EngineEvent[]; unsubscribe: () => void } {
    const filters = w.filters ?? new Map<string, string[]>();
    const inWindow = (nano: bigint) => (w.sinceNano === undefined || nano >= w.sinceNano) && (w.untilNano === undefined || nano <= w.untilNano);
    const past = w.sinceNano === undefined && w.untilNano === undefined ? [] : this.ring.filter((e) => inWindow(e.timeNano) && matchesEvent(e, filters));
    const listener = (e: EngineEvent) => {
      if (inWindow(e.timeNano) && matchesEvent(e, filters)) onEvent(e);
    };
    this.live.on('event', listener);
    return { past, unsubscribe: () => this.live.off('event', listener) };
  }
}
