// The typed Dockerfile AST. parse.ts produces it with *raw words*: values that Docker would run
// through variable substitution (ENV values, COPY paths, LABELs, …) keep their quotes and `$`
// references exactly as written, because quoting decides what expands. expand.ts turns an
// instruction into the same shape with final values, given the variables in scope at that step.

export type EscapeChar = '\\' | '`';

/** A here-document attached to RUN, COPY or ADD (`<<EOF` … `EOF`). */
export interface Heredoc {
  /** The delimiter word without quotes, e.g. `EOF`. */
  name: string;
  /** The body lines joined with `\n`, ending in `\n` (empty body → ''). Leading tabs already removed for `<<-`. */
  content: string;
  /** False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): the body is taken literally. */
  expand: boolean;
  /** True for `<<-EOF`. */
  chomp: boolean;
}

interface At {
  /** 1-based line of the instruction's first line. */
  line: number;
}

export interface RunFlags {
  /** Each `--mount=` value as written (CSV like `type=cache,target=/root/.cache`). */
  mount: string[];
  network?: string;
  security?: string;
}

export interface CopyFlags {
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  /** ADD only. */
  keepGitDir?: boolean;
  /** ADD only: expected digest of a remote source. */
  checksum?: string;
  exclude: string[];
  parents: boolean;
}

export type CopySource = { path: string } | { heredoc: Heredoc };

export interface FromInstruction extends At { kind: 'FROM'; image: string; name?: string; platform?: string }
export interface RunInstruction extends At {
  kind: 'RUN';
  form: 'shell' | 'exec';
  /** Shell form: the text after the flags, heredoc markers included, exactly as written. */
  command: string | string[];
  heredocs: Heredoc[];
  flags: RunFlags;
}
export interface CopyInstruction extends At {
  kind: 'COPY' | 'ADD';
  sources: CopySource[];
  dest: string;
  flags: CopyFlags;
}
export interface KeyValue { key: string; value: string }
export interface EnvInstruction extends At { kind: 'ENV'; pairs: KeyValue[] }
export interface LabelInstruction extends At { kind: 'LABEL'; pairs: KeyValue[] }
export interface ArgInstruction extends At { kind: 'ARG'; args: { name: string; default?: string }[] }
export interface WorkdirInstruction extends At { kind: 'WORKDIR'; path: string }
export interface UserInstruction extends At { kind: 'USER'; user: string }
export interface CommandInstruction extends At {
  kind: 'ENTRYPOINT' | 'CMD';
  form: 'shell' | 'exec';
  command: string | string[];
}
export interface ExposeInstruction extends At { kind: 'EXPOSE'; ports: string[] }
export interface VolumeInstruction extends At { kind: 'VOLUME'; paths: string[] }
export interface StopSignalInstruction extends At { kind: 'STOPSIGNAL'; signal: string }
/** Mirrors docker's image config Healthcheck: durations in nanoseconds, 0/absent = inherit default. */
export interface HealthcheckInstruction extends At {
  kind: 'HEALTHCHECK';
  /** ['NONE'] | ['CMD', arg...] | ['CMD-SHELL', command] */
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}
export interface ShellInstruction extends At { kind: 'SHELL'; shell: string[] }
export interface OnbuildInstruction extends At { kind: 'ONBUILD'; instruction: Instruction; /** the trigger text as docker stores it */ text: string }
export interface MaintainerInstruction extends At { kind: 'MAINTAINER'; maintainer: string }

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CopyInstruction
  | EnvInstruction
  | LabelInstruction
  | ArgInstruction
  | WorkdirInstruction
  | UserInstruction
  | CommandInstruction
  | ExposeInstruction
  | VolumeInstruction
  | StopSignalInstruction
  | HealthcheckInstruction
  | ShellInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

export type InstructionKind = Instruction['kind'];

export interface Dockerfile {
  /** Name used in error messages, default `Dockerfile`. */
  file: string;
  escape: EscapeChar;
  /** Parser directives found at the top (`syntax`, `escape`, `check`), lower-cased names. */
  directives: Record<string, string>;
  instructions: Instruction[];
}
