// docker's restart policies (HostConfig.RestartPolicy): which exits start the container again,
// after what delay, and which containers krd starts when it comes up. Mirrors dockerd's restart
// manager: the delay starts at 100 ms and doubles per restart up to a minute, back to 100 ms
// after a run of 10 s or more; a manual stop (docker stop, docker kill with SIGKILL or the stop
// signal) turns it off until the next docker start.
import { KrError } from '../../util/errors.ts';

export type RestartPolicyName = 'no' | 'always' | 'unless-stopped' | 'on-failure';

export interface RestartPolicy {
  Name: RestartPolicyName;
  MaximumRetryCount: number;
}

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
const RESET_AFTER_MS = 10_000;

/** The request's policy checked with dockerd's messages; an empty name means "no". */
export function parseRestartPolicy(v: unknown, autoRemove: boolean): RestartPolicy {
  if (v === undefined || v === null) return { Name: 'no', MaximumRetryCount: 0 };
  if (typeof v !== 'object' || Array.isArray(v)) throw new KrError('invalid', 'RestartPolicy must be an object');
  const o = v as Record<string, unknown>;
  const name = o.Name ?? '';
  const max = o.MaximumRetryCount ?? 0;
  if (typeof name !== 'string') throw new KrError('invalid', 'RestartPolicy.Name must be a string');
  if (typeof max !== 'number' || !Number.isInteger(max)) throw new KrError('invalid', 'RestartPolicy.MaximumRetryCount must be an integer');
  let policy: RestartPolicy;
  switch (name) {
    case '':
      policy = { Name: 'no', MaximumRetryCount: 0 };
      break;
    case 'no':
    case 'always':
    case 'unless-stopped':
      if (max !== 0) throw new KrError('invalid', `invalid restart policy: maximum retry count can only be used with 'on-failure'${max < 0 ? ' and cannot be negative' : ''}`);
      policy = { Name: name, MaximumRetryCount: 0 };
      break;
    case 'on-failure':
      if (max < 0) throw new KrError('invalid', 'invalid restart policy: maximum retry count cannot be negative');
      policy = { Name: name, MaximumRetryCount: max };
      break;
    default:
      throw new KrError('invalid', `invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  }
  if (autoRemove && policy.Name !== 'no') throw new KrError('invalid', "can't create 'AutoRemove' container with restart policy");
  return policy;
}

/** Would this exit be followed by a start? (restartCount: restarts so far.) */
function wantsRestart(p: RestartPolicy | undefined, exitCode: number, restartCount: number, manuallyStopped: boolean): boolean {
  switch (p?.Name) {
    case 'always':
      return !manuallyStopped;
    case 'unless-stopped':
      return !manuallyStopped;
    case 'on-failure':
      return !manuallyStopped && exitCode !== 0 && (p.MaximumRetryCount === 0 || restartCount < p.MaximumRetryCount);
    default:
      return false;
  }
}

/** The delay before the next start, or null when the policy lets the container stay exited. */
export function restartDelay(
  p: RestartPolicy | undefined,
  exit: { code: number; ranMs: number },
  state: { restartCount: number; manuallyStopped: boolean; lastDelayMs?: number },
): number | null {
  if (!wantsRestart(p, exit.code, state.restartCount, state.manuallyStopped)) return null;
  const last = exit.ranMs >= RESET_AFTER_MS ? undefined : state.lastDelayMs;
  return last === undefined ? FIRST_DELAY_MS : Math.min(MAX_DELAY_MS, last * 2);
}

/**
 * Whether krd starts a stopped container when it comes up: `always` always does (docker starts
 * those on daemon startup whatever stopped them), `unless-stopped` unless stopped by hand,
 * `on-failure` after a failed exit (the retry count starts again).
 */
export function startsWithDaemon(p: RestartPolicy | undefined, exitCode: number, manuallyStopped: boolean): boolean {
  if (p?.Name === 'always') return true;
  return wantsRestart(p, exitCode, 0, manuallyStopped);
}
