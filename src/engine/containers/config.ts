// docker's create body (Config + HostConfig) checked and merged with the image's config as
// dockerd does: image Env first (request keys win), Entrypoint+Cmd, WorkingDir, User, Labels.
import { withDefaultPath } from '../../image/container-env.ts';
import { KrError } from '../../util/errors.ts';
import { mergeHealthcheck, type Healthcheck } from '../health/config.ts';
import type { ContainerConfig as ImageConfig } from '../../image/types.ts';
import { parseRestartPolicy, type RestartPolicy } from './restart-policy.ts';
import { exposedPorts, parseNetworkHostConfig, type NetworkHostConfig } from '../networks/container-config.ts';
import { parseHostResources, type HostResources } from './host-resources.ts';
import { parseMountRequests, type MountRequest } from '../volumes/mount-specs.ts';

export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[];
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  Image: string;
  WorkingDir: string;
  Labels: Record<string, string>;
  /** Anonymous volume paths: the image's VOLUMEs and the request's (`-v /path`). */
  Volumes?: Record<string, object> | null;
  StopSignal?: string;
  Healthcheck?: Healthcheck;
  ExposedPorts?: Record<string, object>;
}

export interface HostConfig extends NetworkHostConfig, HostResources {
  AutoRemove: boolean;
  Binds: string[] | null;
  /** `--mount` entries and `--tmpfs` paths as sent (checked into CreateRequest.mounts). */
  Mounts?: unknown[];
  Tmpfs?: Record<string, string>;
  Init: boolean | null;
  Memory: number;
  RestartPolicy: RestartPolicy;
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new KrError('invalid', `${what} must be an object`);
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new KrError('invalid', `${k} must be a string`);
  return v;
}

function bool(o: Record<string, unknown>, k: string): boolean {
  const v = o[k];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new KrError('invalid', `${k} must be a boolean`);
  return v;
}

/** A string list; docker also accepts a single string for Cmd/Entrypoint. */
function strs(o: Record<string, unknown>, k: string): string[] | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new KrError('invalid', `${k} must be a list of strings`);
  return v as string[];
}

function labels(o: Record<string, unknown>): Record<string, string> {
  const v = obj(o.Labels, 'Labels');
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw new KrError('invalid', `label ${k} must be a string`);
  return v as Record<string, string>;
}

/** Image env, then request env: a KEY set by both takes the request's value. */
function mergeEnv(image: string[], request: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...image, ...request]) out.set(e.split('=')[0], e);
  return withDefaultPath([...out.values()]);
}

export interface CreateRequest {
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** Every mount, checked, in mount order (volumes/mount-specs.ts). */
  mounts: MountRequest[];
}

export function parseCreate(body: unknown, image: ImageConfig): CreateRequest {
  const b = obj(body, 'request body');
  const h = obj(b.HostConfig, 'HostConfig');
  const imageName = str(b, 'Image');
  if (!imageName) throw new KrError('invalid', 'config error: no image given');
  const entrypoint = strs(b, 'Entrypoint');
  const cmd = strs(b, 'Cmd');
  // an Entrypoint in the request drops the image's Cmd too; [""] clears the entrypoint
  const ownEntry = entrypoint !== undefined;
  const finalEntry = ownEntry ? (entrypoint.length === 1 && entrypoint[0] === '' ? null : entrypoint) : (image.Entrypoint ?? null);
  const finalCmd = cmd !== undefined && cmd.length > 0 ? cmd : ownEntry ? null : (image.Cmd ?? null);
  if ((finalEntry?.length ?? 0) + (finalCmd?.length ?? 0) === 0) throw new KrError('invalid', 'no command specified');
  const memory = h.Memory ?? 0;
  if (typeof memory !== 'number' || memory < 0) throw new KrError('invalid', 'Memory must be a positive number');
  if (memory > 0 && memory < 6 * 1024 * 1024) throw new KrError('invalid', 'Minimum memory limit allowed is 6MB');
  const init = h.Init;
  if (init !== undefined && init !== null && typeof init !== 'boolean') throw new KrError('invalid', 'Init must be a boolean');
  const binds = strs(h, 'Binds') ?? null;
  const healthcheck = mergeHealthcheck(b.Healthcheck, image.Healthcheck);
  const network = parseNetworkHostConfig(h);
  const exposed = exposedPorts(b.ExposedPorts, image.ExposedPorts as Record<string, unknown> | undefined, network.PortBindings);
  const volumes: Record<string, object> = { ...(image.Volumes ?? {}), ...(obj(b.Volumes, 'Volumes') as Record<string, object>) };
  const mounts = parseMountRequests(h, Object.keys(volumes));
  return {
    config: {
      Hostname: str(b, 'Hostname') ?? '',
      Domainname: str(b, 'Domainname') ?? '',
      User: str(b, 'User') || image.User || '',
      AttachStdin: bool(b, 'AttachStdin'),
      AttachStdout: bool(b, 'AttachStdout'),
      AttachStderr: bool(b, 'AttachStderr'),
      Tty: bool(b, 'Tty'),
      OpenStdin: bool(b, 'OpenStdin'),
      StdinOnce: bool(b, 'StdinOnce'),
      Env: mergeEnv(image.Env ?? [], strs(b, 'Env') ?? []),
      Cmd: finalCmd,
      Entrypoint: finalEntry,
      Image: imageName,
      WorkingDir: str(b, 'WorkingDir') || image.WorkingDir || '',
      Labels: { ...(image.Labels ?? {}), ...labels(b) },
      ...(Object.keys(exposed).length ? { ExposedPorts: exposed } : {}),
      Volumes: Object.keys(volumes).length ? volumes : null,
      ...((str(b, 'StopSignal') ?? image.StopSignal) ? { StopSignal: str(b, 'StopSignal') ?? image.StopSignal } : {}),
      ...(healthcheck ? { Healthcheck: healthcheck } : {}),
    },
    hostConfig: {
      AutoRemove: bool(h, 'AutoRemove'),
      Binds: binds,
      ...(Array.isArray(h.Mounts) && h.Mounts.length ? { Mounts: h.Mounts } : {}),
      ...(h.Tmpfs && typeof h.Tmpfs === 'object' && Object.keys(h.Tmpfs).length ? { Tmpfs: h.Tmpfs as Record<string, string> } : {}),
      Init: (init as boolean | null | undefined) ?? null,
      Memory: memory,
      RestartPolicy: parseRestartPolicy(h.RestartPolicy, bool(h, 'AutoRemove')),
      ...network,
      ...parseHostResources(h),
    },
    mounts,
  };
}

/** The command the process runs: entrypoint + cmd. */
export function commandOf(c: ContainerConfig): string[] {
  return [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
}
