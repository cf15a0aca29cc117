// The instructions that only change the image config, applied as docker applies them.
import path from 'node:path';
import type { ContainerConfig } from '../image/types.ts';
import type { Instruction } from './dockerfile/types.ts';

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

export interface ConfigState {
  config: ContainerConfig;
  shell: string[];
  /** True while Cmd is still the base image's (ENTRYPOINT then clears it, as docker does). */
  cmdFromBase: boolean;
}

/** Shell form → SHELL + [text]; exec form as written. */
export function commandOf(form: 'shell' | 'exec', command: string | string[], shell: string[]): string[] {
  return form === 'exec' ? (command as string[]) : [...shell, command as string];
}

/** Applies a config-only instruction; returns false for instructions that change files. */
export function applyConfig(state: ConfigState, inst: Instruction, env: Map<string, string>): boolean {
  const c = state.config;
  switch (inst.kind) {
    case 'ENV':
      c.Env = [...env].map(([k, v]) => `${k}=${v}`);
      return true;
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const p of inst.pairs) c.Labels[p.key] = p.value;
      return true;
    case 'MAINTAINER':
      c.Labels = { ...(c.Labels ?? {}), maintainer: inst.maintainer };
      return true;
    case 'EXPOSE':
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of inst.ports) c.ExposedPorts[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
      return true;
    case 'VOLUME':
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of inst.paths) c.Volumes[v] = {};
      return true;
    case 'USER':
      c.User = inst.user;
      return true;
    case 'STOPSIGNAL':
      c.StopSignal = inst.signal;
      return true;
    case 'SHELL':
      state.shell = inst.shell;
      return true;
    case 'CMD':
      c.Cmd = commandOf(inst.form, inst.command, state.shell);
      state.cmdFromBase = false;
      return true;
    case 'ENTRYPOINT':
      c.Entrypoint = commandOf(inst.form, inst.command, state.shell);
      if (state.cmdFromBase) c.Cmd = null;
      return true;
    case 'HEALTHCHECK': {
      const hc: NonNullable<ContainerConfig['Healthcheck']> = { Test: inst.test };
      if (inst.interval) hc.Interval = inst.interval;
      if (inst.timeout) hc.Timeout = inst.timeout;
      if (inst.startPeriod) hc.StartPeriod = inst.startPeriod;
      if (inst.startInterval) hc.StartInterval = inst.startInterval;
      if (inst.retries) hc.Retries = inst.retries;
      c.Healthcheck = hc;
      return true;
    }
    case 'ONBUILD':
      c.OnBuild = [...((c.OnBuild as string[] | undefined) ?? []), inst.text];
      return true;
    case 'ARG':
      return true;
    case 'WORKDIR':
      // Also creates the directory (a file step); the config part is here.
      c.WorkingDir = path.posix.resolve(c.WorkingDir || '/', inst.path);
      return false;
    default:
      return false;
  }
}

/** A step as one readable line: the log's "Step n/m : …" and the image history's created_by. */
export function describe(inst: Instruction, shell: string[]): string {
  const q = (v: string) => (/\s/.test(v) && !/^["']/.test(v) ? JSON.stringify(v) : v);
  switch (inst.kind) {
    case 'FROM':
      return `FROM ${inst.image}${inst.name ? ` AS ${inst.name}` : ''}`;
    case 'RUN':
      return `RUN ${commandOf(inst.form, inst.command, shell).join(' ')}`;
    case 'COPY':
    case 'ADD': {
      const flags = Object.entries(inst.flags)
        .filter(([, v]) => typeof v === 'string')
        .map(([k, v]) => `--${k}=${v}`);
      const sources = inst.sources.map((s) => ('path' in s ? s.path : `<<${s.heredoc.name}`));
      return [inst.kind, ...flags, ...sources, inst.dest].join(' ');
    }
    case 'ENV':
    case 'LABEL':
      return `${inst.kind} ${inst.pairs.map((p) => `${p.key}=${q(p.value)}`).join(' ')}`;
    case 'ARG':
      return `ARG ${inst.args.map((a) => (a.default === undefined ? a.name : `${a.name}=${q(a.default)}`)).join(' ')}`;
    case 'WORKDIR':
      return `WORKDIR ${inst.path}`;
    case 'USER':
      return `USER ${inst.user}`;
    case 'CMD':
    case 'ENTRYPOINT':
      return `${inst.kind} ${inst.form === 'exec' ? JSON.stringify(inst.command) : inst.command}`;
    case 'EXPOSE':
      return `EXPOSE ${inst.ports.join(' ')}`;
    case 'VOLUME':
      return `VOLUME ${JSON.stringify(inst.paths)}`;
    case 'STOPSIGNAL':
      return `STOPSIGNAL ${inst.signal}`;
    case 'HEALTHCHECK':
      return `HEALTHCHECK ${JSON.stringify(inst.test)}`;
    case 'SHELL':
      return `SHELL ${JSON.stringify(inst.shell)}`;
    case 'ONBUILD':
      return `ONBUILD ${inst.text}`;
    case 'MAINTAINER':
      return `MAINTAINER ${inst.maintainer}`;
  }
}
