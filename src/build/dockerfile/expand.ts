// Variable substitution as Docker applies it, and the stage plan of a (multi-stage) Dockerfile.
//
// Only ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR (and ARG defaults) are expanded
// by the builder; RUN/CMD/ENTRYPOINT are left to the shell in the container, ONBUILD triggers are
// expanded when they fire in a child build.

import { KrError } from '../../util/errors.ts';
import { processWord, type Lookup } from './words.ts';
import type { CopySource, Dockerfile, EscapeChar, FromInstruction, Instruction } from './types.ts';

export type Vars = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

function lookupOf(vars: Vars): Lookup {
  if (vars instanceof Map) return (n) => vars.get(n);
  const rec = vars as Readonly<Record<string, string>>;
  return (n) => (Object.hasOwn(rec, n) ? rec[n] : undefined);
}

/** Substitutes variables in one raw word and removes its quotes and escapes. */
export function expandWord(word: string, vars: Vars | Lookup, escape: EscapeChar = '\\'): string {
  return processWord(word, typeof vars === 'function' ? vars : lookupOf(vars), escape);
}

/**
 * Returns the instruction with its raw words replaced by final values. Every variable reference
 * sees the values from *before* this instruction (so in `ENV a=2 b=$a`, b gets the previous a).
 * MAINTAINER comes back as `LABEL maintainer=…`, which is what docker records.
 */
export function expandInstruction(inst: Instruction, vars: Vars | Lookup, escape: EscapeChar = '\\'): Instruction {
  const lookup = typeof vars === 'function' ? vars : lookupOf(vars);
  const w = (s: string) => processWord(s, lookup, escape);
  const where = (err: unknown): never => {
    if (err instanceof KrError) throw new KrError(err.kind, `line ${inst.line}: ${err.message}`, { cause: err });
    throw err;
  };
  try {
    switch (inst.kind) {
      case 'FROM':
        return { ...inst, image: w(inst.image), ...(inst.platform !== undefined ? { platform: w(inst.platform) } : {}) };
      case 'COPY':
      case 'ADD': {
        const f = inst.flags;
        const flags = { ...f };
        for (const k of ['from', 'chown', 'chmod', 'checksum'] as const) if (f[k] !== undefined) flags[k] = w(f[k]);
        flags.exclude = f.exclude.map(w);
        const sources: CopySource[] = inst.sources.map((s) =>
          'path' in s ? { path: w(s.path) } : { heredoc: s.heredoc.expand ? { ...s.heredoc, content: expandHeredoc(s.heredoc.content, lookup, escape) } : s.heredoc },
        );
        return { ...inst, sources, dest: w(inst.dest), flags };
      }
      case 'ENV':
      case 'LABEL':
        return { ...inst, pairs: inst.pairs.map((p) => ({ key: w(p.key), value: w(p.value) })) };
      case 'MAINTAINER':
        return { kind: 'LABEL', line: inst.line, pairs: [{ key: 'maintainer', value: inst.maintainer }] };
      case 'ARG':
        return { ...inst, args: inst.args.map((a) => (a.default === undefined ? a : { name: a.name, default: w(a.default) })) };
      case 'WORKDIR':
        return { ...inst, path: w(inst.path) };
      case 'USER':
        return { ...inst, user: w(inst.user) };
      case 'STOPSIGNAL':
        return { ...inst, signal: w(inst.signal) };
      case 'EXPOSE':
        return { ...inst, ports: inst.ports.map(w) };
      case 'VOLUME':
        return { ...inst, paths: inst.paths.map(w) };
      default:
        return inst;
    }
  } catch (err) {
    return where(err);
  }
}

/** In a heredoc body only `$` references (and escaped `\$`) are processed; quotes are ordinary text. */
function expandHeredoc(content: string, lookup: Lookup, escape: EscapeChar): string {
  let out = '';
  let i = 0;
  while (i < content.length) {
    const dollar = content.indexOf('$', i);
    const esc = content.indexOf(escape, i);
    if (esc >= 0 && (dollar < 0 || esc < dollar)) {
      const next = content[esc + 1];
      out += content.slice(i, esc) + (next === '$' || next === escape ? next : escape + (next ?? ''));
      i = esc + 2;
      continue;
    }
    if (dollar < 0) return out + content.slice(i);
    out += content.slice(i, dollar);
    // Find the extent of the reference with the ordinary lexer, run on the reference alone.
    const m = /^\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*|[0-9]+)?/.exec(content.slice(dollar))!;
    out += m[1] === undefined ? '$' : processWord(m[0], lookup, escape);
    i = dollar + m[0].length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scope of one stage: ARG and ENV as the builder walks its instructions.

export interface Step {
  /** The instruction with final values (RUN/CMD/ENTRYPOINT unchanged). */
  instruction: Instruction;
  /** ENV in effect after this instruction (what the image config records). */
  env: Map<string, string>;
  /** ARGs in scope after this instruction with a value; visible to RUN as environment, not recorded. */
  args: Map<string, string>;
}

export class StageScope {
  readonly env: Map<string, string>;
  readonly args = new Map<string, string | undefined>();
  private readonly globalArgs: ReadonlyMap<string, string | undefined>;
  private readonly buildArgs: ReadonlyMap<string, string>;
  private readonly escape: EscapeChar;

  constructor(opts: {
    globalArgs?: ReadonlyMap<string, string | undefined>;
    buildArgs?: Vars;
    /** ENV of the base image or parent stage. */
    baseEnv?: Vars;
    escape?: EscapeChar;
  }) {
    this.globalArgs = opts.globalArgs ?? new Map();
    this.buildArgs = toMap(opts.buildArgs);
    this.env = new Map(toMap(opts.baseEnv));
    this.escape = opts.escape ?? '\\';
  }

  /** ENV wins over ARG of the same name; an ARG declared without any value is unset. */
  readonly lookup: Lookup = (name) => (this.env.has(name) ? this.env.get(name) : this.args.get(name));

  step(inst: Instruction): Step {
    let expanded: Instruction;
    if (inst.kind === 'ARG') {
      // Each ARG on a line is declared in turn, so `ARG A=1 B=$A` sees A.
      const declared: { name: string; default?: string }[] = [];
      for (const a of inst.args) {
        const def = a.default === undefined ? undefined : processWord(a.default, this.lookup, this.escape);
        // Build args win; a bare `ARG X` inside a stage takes the global ARG's value.
        this.args.set(a.name, this.buildArgs.get(a.name) ?? (def === undefined ? this.globalArgs.get(a.name) : def));
        declared.push(def === undefined ? { name: a.name } : { name: a.name, default: def });
      }
      expanded = { ...inst, args: declared };
    } else {
      expanded = expandInstruction(inst, this.lookup, this.escape);
      // All pairs were expanded with the values from before the instruction; now they take effect.
      if (expanded.kind === 'ENV') for (const p of expanded.pairs) this.env.set(p.key, p.value);
    }
    const args = new Map<string, string>();
    for (const [k, v] of this.args) if (v !== undefined) args.set(k, v);
    return { instruction: expanded, env: new Map(this.env), args };
  }
}

function toMap(vars: Vars | undefined): Map<string, string> {
  if (!vars) return new Map();
  if (vars instanceof Map) return new Map(vars);
  return new Map(Object.entries(vars as Record<string, string>));
}

// ---------------------------------------------------------------------------------------------
// Stages.

export interface Stage {
  index: number;
  /** Lower-cased `AS` name. */
  name?: string;
  from: FromInstruction;
  /** The expanded FROM: an earlier stage, or an image reference (`scratch` included). */
  base: { stage: number } | { image: string };
  platform?: string;
  /** The instructions after FROM, raw (expand them in order with a StageScope). */
  instructions: Instruction[];
  /** Earlier stages this one reads (FROM, COPY/ADD --from, RUN --mount from=), ascending. */
  dependsOn: number[];
  /** Images named by --from / mount from= that are not stages. */
  images: string[];
}

export interface BuildPlan {
  escape: EscapeChar;
  /** ARGs before the first FROM with their values (build args applied); usable in FROM lines. */
  globalArgs: Map<string, string | undefined>;
  stages: Stage[];
  /** Index of the stage to build. */
  target: number;
  /** Stages the target needs, itself included, ascending: build these, skip the rest. */
  needed: number[];
  /** Build args that no ARG declares (docker warns about them). */
  unusedBuildArgs: string[];
}

export function stagesOf(df: Dockerfile, opts: { buildArgs?: Vars; target?: string } = {}): BuildPlan {
  const buildArgs = toMap(opts.buildArgs);
  const declared = new Set<string>();
  const globalArgs = new Map<string, string | undefined>();
  const globalLookup: Lookup = (n) => globalArgs.get(n);
  const err = (line: number, msg: string) => new KrError('invalid', `${df.file}:${line}: ${msg}`);
  const inContext = <T>(line: number, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof KrError) throw err(line, e.message.replace(/^line \d+: /, ''));
      throw e;
    }
  };

  let i = 0;
  for (; i < df.instructions.length && df.instructions[i].kind === 'ARG'; i++) {
    const inst = df.instructions[i];
    if (inst.kind !== 'ARG') break;
    for (const a of inst.args) {
      declared.add(a.name);
      const def = a.default === undefined ? undefined : inContext(inst.line, () => processWord(a.default!, globalLookup, df.escape));
      globalArgs.set(a.name, buildArgs.get(a.name) ?? def);
    }
  }

  const stages: Stage[] = [];
  for (; i < df.instructions.length; i++) {
    const inst = df.instructions[i];
    if (inst.kind === 'FROM') {
      const from = inContext(inst.line, () => expandInstruction(inst, globalLookup, df.escape)) as FromInstruction;
      if (from.image === '') throw err(inst.line, `FROM ${inst.image} expands to an empty image name`);
      const ref = stageRef(stages, from.image, false);
      if (inst.name && stages.some((s) => s.name === inst.name)) throw err(inst.line, `duplicate stage name ${inst.name}`);
      stages.push({
        index: stages.length, from: inst, base: ref === undefined ? { image: from.image } : { stage: ref },
        instructions: [], dependsOn: ref === undefined ? [] : [ref], images: [],
        ...(inst.name ? { name: inst.name } : {}), ...(from.platform !== undefined ? { platform: from.platform } : {}),
      });
    } else stages.at(-1)!.instructions.push(inst);
  }

  // Walk each stage's ARG/ENV so `--from=$X` resolves as the builder will see it.
  for (const stage of stages) {
    const scope = new StageScope({ globalArgs, buildArgs, escape: df.escape });
    for (const inst of stage.instructions) {
      if (inst.kind === 'ARG') for (const a of inst.args) declared.add(a.name);
      const refs: string[] = [];
      if ((inst.kind === 'COPY' || inst.kind === 'ADD') && inst.flags.from !== undefined) {
        refs.push(inContext(inst.line, () => processWord(inst.flags.from!, scope.lookup, df.escape)));
      }
      if (inst.kind === 'RUN') for (const m of inst.flags.mount) { const f = mountFrom(m); if (f) refs.push(inContext(inst.line, () => processWord(f, scope.lookup, df.escape))); }
      for (const r of refs) {
        const idx = stageRef(stages.slice(0, stage.index), r, true);
        if (idx !== undefined) stage.dependsOn.push(idx);
        else if (/^[0-9]+$/.test(r)) throw err(inst.line, `--from=${r} does not name an earlier stage (this is stage ${stage.index})`);
        else if (!stage.images.includes(r)) stage.images.push(r);
      }
      inContext(inst.line, () => scope.step(inst));
    }
    stage.dependsOn = [...new Set(stage.dependsOn)].sort((a, b) => a - b);
  }

  let target = stages.length - 1;
  if (opts.target !== undefined) {
    const t = stages.findIndex((s) => s.name === opts.target!.toLowerCase());
    if (t < 0) {
      const names = stages.filter((s) => s.name).map((s) => s.name);
      throw new KrError('invalid', `${df.file}: target stage ${JSON.stringify(opts.target)} not found; stages: ${names.length ? names.join(', ') : '(none named)'}`);
    }
    target = t;
  }
  const needed = new Set<number>();
  const visit = (n: number) => {
    if (needed.has(n)) return;
    needed.add(n);
    stages[n].dependsOn.forEach(visit);
  };
  visit(target);
  return {
    escape: df.escape, globalArgs, stages, target,
    needed: [...needed].sort((a, b) => a - b),
    unusedBuildArgs: [...buildArgs.keys()].filter((k) => !declared.has(k)).sort(),
  };
}

/** Resolves a stage name (case-insensitive) or, when allowed, a numeric index among `stages`. */
function stageRef(stages: readonly Stage[], ref: string, allowIndex: boolean): number | undefined {
  if (allowIndex && /^[0-9]+$/.test(ref)) {
    const n = Number(ref);
    return n < stages.length ? n : undefined;
  }
  const lower = ref.toLowerCase();
  for (let k = stages.length - 1; k >= 0; k--) if (stages[k].name === lower) return k;
  return undefined;
}

/** The `from=` field of a RUN --mount value (CSV of key=value), if any. */
export function mountFrom(mount: string): string | undefined {
  for (const field of mount.split(',')) {
    const eq = field.indexOf('=');
    if (eq > 0 && field.slice(0, eq).trim().toLowerCase() === 'from') return field.slice(eq + 1).trim();
  }
  return undefined;
}
