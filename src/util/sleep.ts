// A pause that ends early, without an error, when its signal aborts: the loops that use it
// (health probes, stats streams) check the signal themselves right after.
import { setTimeout as delay } from 'node:timers/promises';

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}
