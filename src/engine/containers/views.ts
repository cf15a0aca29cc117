// docker's shapes of a container record: inspect (GET /containers/{id}/json) and the list
// entries of GET /containers/json, with the "Up 3 seconds" / "Exited (0) 2 seconds ago" texts.
import { commandOf } from './config.ts';
import type { ContainerRecord } from './records.ts';
import { parseHealth } from '../health/monitor.ts';

const ZERO_TIME = '0001-01-01T00:00:00Z';

const iso = (ms: number | null): string => (ms === null ? ZERO_TIME : new Date(ms).toISOString());

/** go-units HumanDuration, which docker ps uses. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const minutes = Math.floor(ms / 60_000);
  const hours = Math.round(ms / 3_600_000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

export function statusText(r: ContainerRecord, now = Date.now()): string {
  if (r.state === 'running') {
    const health = parseHealth(r.health)?.Status;
    const shown = !health ? '' : health === 'starting' ? ' (health: starting)' : ` (${health})`;
    return `Up ${humanDuration(now - (r.started ?? now))}${shown}`;
  }
  if (r.state === 'paused') return `Up ${humanDuration(now - (r.started ?? now))} (Paused)`;
  if (r.state === 'restarting') return `Restarting (${r.exit_code ?? 0}) ${humanDuration(now - (r.finished ?? now))} ago`;
  if (r.state === 'exited') return `Exited (${r.exit_code ?? 0}) ${humanDuration(now - (r.finished ?? now))} ago`;
  if (r.state === 'created') return 'Created';
  return r.state.charAt(0).toUpperCase() + r.state.slice(1);
}

export function inspectView(r: ContainerRecord, extra: { logPath: string }): object {
  const [path = '', ...args] = commandOf(r.config);
  return {
    Id: r.id,
    Created: new Date(r.created).toISOString(),
    Path: path,
    Args: args,
    State: {
      Status: r.state,
      // as dockerd: paused and restarting containers count as running
      Running: r.state === 'running' || r.state === 'paused' || r.state === 'restarting',
      Paused: r.state === 'paused',
      Restarting: r.state === 'restarting',
      OOMKilled: false,
      Dead: r.state === 'dead',
      Pid: r.state === 'running' || r.state === 'paused' ? (r.pid ?? 0) : 0,
      ExitCode: r.exit_code ?? 0,
      Error: '',
      StartedAt: iso(r.started),
      FinishedAt: iso(r.finished),
      ...(r.health ? { Health: parseHealth(r.health) } : {}),
    },
    Image: r.image_id,
    ResolvConfPath: '',
    HostnamePath: '',
    HostsPath: '',
    LogPath: extra.logPath,
    Name: `/${r.name}`,
    RestartCount: r.restart_count ?? 0,
    Driver: 'overlayfs',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: r.hostConfig,
    Mounts: [],
    Config: r.config,
    NetworkSettings: { Networks: {}, Ports: {} },
  };
}

export function listView(r: ContainerRecord, now = Date.now()): object {
  return {
    Id: r.id,
    Names: [`/${r.name}`],
    Image: r.image_ref,
    ImageID: r.image_id,
    // dockerd quotes the arguments that hold a space
    Command: commandOf(r.config).map((a, i) => (i > 0 && a.includes(' ') ? `'${a}'` : a)).join(' '),
    Created: Math.floor(r.created / 1000),
    Ports: [],
    Labels: r.config.Labels,
    State: r.state,
    Status: statusText(r, now),
    HostConfig: { NetworkMode: r.hostConfig.NetworkMode },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  };
}

/** Filters of `docker ps`: status, name, id, label, ancestor, health. */
export function matchesFilters(r: ContainerRecord, filters: Map<string, string[]>): boolean {
  for (const [key, values] of filters) {
    const any = (pred: (v: string) => boolean) => values.some(pred);
    if (key === 'status' && !any((v) => v === r.state)) return false;
    if (key === 'name' && !any((v) => new RegExp(v.replace(/^\//, '')).test(r.name))) return false;
    if (key === 'id' && !any((v) => r.id.startsWith(v))) return false;
    // "none": no healthcheck (or not running one), as docker's filter
    if (key === 'health' && !any((v) => v === (r.state === 'running' ? (parseHealth(r.health)?.Status ?? 'none') : 'none'))) return false;
    if (key === 'ancestor' && !any((v) => v === r.image_ref || v === r.image_id || r.image_id.startsWith(`sha256:${v}`))) return false;
    if (key === 'label') {
      const ok = values.every((v) => {
        const eq = v.indexOf('=');
        return eq < 0 ? v in r.config.Labels : r.config.Labels[v.slice(0, eq)] === v.slice(eq + 1);
      });
      if (!ok) return false;
    }
  }
  return true;
}
