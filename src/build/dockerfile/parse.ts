// parseDockerfile: Dockerfile text → typed AST, following Docker's Dockerfile reference (BuildKit
// frontend 1.x). No variable substitution happens here (see expand.ts); values stay raw words.

import { KrError } from '../../util/errors.ts';
import { LineReader } from './lines.ts';
import { extractFlags, parseDuration, type RawFlag } from './flags.ts';
import { splitWords } from './words.ts';
import type {
  CopyFlags, CopySource, Dockerfile, EscapeChar, Heredoc, HealthcheckInstruction, Instruction, KeyValue, RunFlags,
} from './types.ts';

export interface ParseOptions {
  /** Name used in error messages, default `Dockerfile`. */
  file?: string;
}

export function parseDockerfile(text: string, opts: ParseOptions = {}): Dockerfile {
  const file = opts.file ?? 'Dockerfile';
  const reader = new LineReader(text, file);
  const instructions: Instruction[] = [];
  for (let l = reader.next(); l; l = reader.next()) {
    const ctx: Ctx = { reader, line: l.line, escape: reader.escape };
    instructions.push(parseInstruction(l.text, ctx, true));
  }
  const first = instructions.find((i) => i.kind !== 'ARG');
  if (instructions.length === 0) throw new KrError('invalid', `${file}: file with no instructions`);
  if (!first) throw new KrError('invalid', `${file}:${instructions.at(-1)!.line}: no FROM instruction`);
  if (first.kind !== 'FROM') {
    throw new KrError('invalid', `${file}:${first.line}: ${first.kind} before any FROM: a Dockerfile must start with FROM (only ARG may precede it)`);
  }
  return { file, escape: reader.escape, directives: reader.directives, instructions };
}

interface Ctx {
  reader: LineReader;
  line: number;
  escape: EscapeChar;
}

function fail(ctx: Ctx, message: string): never {
  throw ctx.reader.error(ctx.line, message);
}

/** `heredocs` is false for ONBUILD triggers, whose text is a single line. */
function parseInstruction(text: string, ctx: Ctx, heredocs: boolean): Instruction {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(text.trim())!;
  const keyword = m[1].toUpperCase();
  const args = m[2];
  const line = ctx.line;
  switch (keyword) {
    case 'FROM': {
      const { flags, rest } = flagsFor(ctx, keyword, args, { platform: 'string' });
      const words = splitWords(rest, ctx.escape);
      if (words.length === 0) fail(ctx, 'FROM requires an image name');
      if (words.length !== 1 && !(words.length === 3 && words[1].toLowerCase() === 'as')) {
        fail(ctx, `FROM takes "image" or "image AS name", got ${JSON.stringify(rest)}`);
      }
      const name = words[2]?.toLowerCase();
      if (name !== undefined && !/^[a-z][a-z0-9._-]*$/.test(name)) fail(ctx, `invalid stage name ${JSON.stringify(words[2])}`);
      return { kind: 'FROM', line, image: words[0], ...(name ? { name } : {}), ...str(flags, 'platform') };
    }
    case 'RUN': {
      const { flags, rest } = flagsFor(ctx, keyword, args, { mount: 'list', network: 'string', security: 'string' });
      const runFlags: RunFlags = { mount: list(flags, 'mount'), ...str(flags, 'network'), ...str(flags, 'security') };
      const json = parseJsonArray(rest);
      if (json) return { kind: 'RUN', line, form: 'exec', command: json, heredocs: [], flags: runFlags };
      if (rest === '') fail(ctx, 'RUN requires a command');
      const docs = heredocs ? readHeredocs(ctx, rest) : [];
      return { kind: 'RUN', line, form: 'shell', command: rest, heredocs: docs, flags: runFlags };
    }
    case 'COPY':
    case 'ADD': {
      const spec: FlagSpec = { from: 'string', chown: 'string', chmod: 'string', link: 'bool', exclude: 'list', parents: 'bool' };
      if (keyword === 'ADD') Object.assign(spec, { 'keep-git-dir': 'bool', checksum: 'string' });
      const { flags, rest } = flagsFor(ctx, keyword, args, spec);
      const copyFlags: CopyFlags = {
        ...str(flags, 'from'), ...str(flags, 'chown'), ...str(flags, 'chmod'), ...str(flags, 'checksum'),
        link: bool(ctx, flags, 'link') ?? false,
        exclude: list(flags, 'exclude'),
        parents: bool(ctx, flags, 'parents') ?? false,
      };
      const keep = bool(ctx, flags, 'keep-git-dir');
      if (keep !== undefined) copyFlags.keepGitDir = keep;
      const json = parseJsonArray(rest);
      const words = json ?? splitWords(rest, ctx.escape);
      const docs = !json && heredocs ? readHeredocs(ctx, rest) : [];
      const sources: CopySource[] = words.slice(0, -1).map((w) => {
        const doc = heredocMarker(w) && docs.find((d) => d.name === heredocMarker(w)!.name);
        return doc ? { heredoc: doc } : { path: w };
      });
      if (words.length < 2) fail(ctx, `${keyword} requires at least one source and a destination`);
      return { kind: keyword, line, sources, dest: words.at(-1)!, flags: copyFlags };
    }
    case 'ENV':
    case 'LABEL':
      return { kind: keyword, line, pairs: keyValues(ctx, keyword, args) };
    case 'MAINTAINER':
      if (args.trim() === '') fail(ctx, 'MAINTAINER requires a name');
      return { kind: 'MAINTAINER', line, maintainer: args.trim() };
    case 'ARG': {
      const words = splitWords(args, ctx.escape);
      if (words.length === 0) fail(ctx, 'ARG requires at least one argument');
      return {
        kind: 'ARG', line,
        args: words.map((w) => {
          const eq = w.indexOf('=');
          const name = eq < 0 ? w : w.slice(0, eq);
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(ctx, `invalid ARG name ${JSON.stringify(name)}`);
          return eq < 0 ? { name } : { name, default: w.slice(eq + 1) };
        }),
      };
    }
    case 'WORKDIR':
      return { kind: 'WORKDIR', line, path: single(ctx, keyword, args) };
    case 'USER':
      return { kind: 'USER', line, user: single(ctx, keyword, args) };
    case 'STOPSIGNAL':
      return { kind: 'STOPSIGNAL', line, signal: single(ctx, keyword, args) };
    case 'ENTRYPOINT':
    case 'CMD': {
      const json = parseJsonArray(args);
      return json ? { kind: keyword, line, form: 'exec', command: json } : { kind: keyword, line, form: 'shell', command: args.trim() };
    }
    case 'EXPOSE': {
      const ports = splitWords(args, ctx.escape);
      if (ports.length === 0) fail(ctx, 'EXPOSE requires at least one port');
      return { kind: 'EXPOSE', line, ports };
    }
    case 'VOLUME': {
      const paths = parseJsonArray(args) ?? splitWords(args, ctx.escape);
      if (paths.length === 0 || paths.some((p) => p.trim() === '')) fail(ctx, 'VOLUME requires at least one non-empty path');
      return { kind: 'VOLUME', line, paths };
    }
    case 'SHELL': {
      const shell = parseJsonArray(args);
      if (!shell) fail(ctx, `SHELL requires the arguments in JSON form, like ["/bin/sh", "-c"]`);
      if (shell.length === 0) fail(ctx, 'SHELL requires at least one argument');
      return { kind: 'SHELL', line, shell };
    }
    case 'HEALTHCHECK':
      return parseHealthcheck(ctx, args);
    case 'ONBUILD': {
      const inner = args.trim();
      if (inner === '') fail(ctx, 'ONBUILD requires an instruction');
      const innerKind = /^\S+/.exec(inner)![0].toUpperCase();
      if (innerKind === 'ONBUILD' || innerKind === 'FROM' || innerKind === 'MAINTAINER') {
        fail(ctx, `${innerKind} is not allowed as an ONBUILD trigger`);
      }
      return { kind: 'ONBUILD', line, instruction: parseInstruction(inner, ctx, false), text: inner };
    }
    default:
      return fail(ctx, `unknown instruction ${m[1]}`);
  }
}

type FlagSpec = Record<string, 'string' | 'bool' | 'list'>;
type Flags = Map<string, (string | undefined)[]>;

function flagsFor(ctx: Ctx, keyword: string, args: string, spec: FlagSpec): { flags: Flags; rest: string } {
  const { flags, rest } = extractFlags(args);
  const out: Flags = new Map();
  for (const f of flags as RawFlag[]) {
    const type = Object.hasOwn(spec, f.name) ? spec[f.name] : undefined;
    if (!type) fail(ctx, `unknown flag --${f.name} for ${keyword}`);
    if (type !== 'bool' && f.value === undefined) fail(ctx, `flag --${f.name} needs a value (--${f.name}=…)`);
    if (type !== 'list' && out.has(f.name)) fail(ctx, `flag --${f.name} given twice`);
    out.set(f.name, [...(out.get(f.name) ?? []), f.value]);
  }
  return { flags: out, rest };
}

function str(flags: Flags, name: string): Record<string, string> {
  const v = flags.get(name)?.[0];
  // Flag names are kebab-case; AST fields are camelCase.
  return v === undefined ? {} : { [name.replace(/-(.)/g, (_, c: string) => c.toUpperCase())]: v };
}

function list(flags: Flags, name: string): string[] {
  return (flags.get(name) ?? []).filter((v): v is string => v !== undefined);
}

function bool(ctx: Ctx, flags: Flags, name: string): boolean | undefined {
  const v = flags.get(name);
  if (!v) return undefined;
  if (v[0] === undefined || v[0] === 'true') return true;
  if (v[0] === 'false') return false;
  return fail(ctx, `flag --${name} expects true or false, got ${JSON.stringify(v[0])}`);
}

function single(ctx: Ctx, keyword: string, args: string): string {
  const v = args.trim();
  if (v === '') fail(ctx, `${keyword} requires an argument`);
  return v;
}

/** Docker's exec form: the whole argument text is a JSON array of strings; anything else is shell form. */
function parseJsonArray(text: string): string[] | undefined {
  const t = text.trim();
  if (!t.startsWith('[') || !t.endsWith(']')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    // not JSON: shell form
  }
  return undefined;
}

/** `k=v k2="v 2"`, or the legacy single pair `K some value` (the value is the rest of the line). */
function keyValues(ctx: Ctx, keyword: string, args: string): KeyValue[] {
  const words = splitWords(args, ctx.escape);
  if (words.length === 0) fail(ctx, `${keyword} requires at least one key=value pair`);
  if (!words[0].includes('=')) {
    const m = /^\S+\s+([\s\S]+)$/.exec(args.trim());
    if (!m) fail(ctx, `${keyword} ${words[0]} needs a value: use ${keyword} ${words[0]}=value`);
    return [{ key: words[0], value: m[1].trim() }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) fail(ctx, `${keyword}: can't find = in ${JSON.stringify(w)}, must be of the form name=value`);
    if (eq === 0) fail(ctx, `${keyword} names can not be blank`);
    return { key: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

function heredocMarker(word: string): { name: string; chomp: boolean; expand: boolean } | undefined {
  const m = /^<<(-?)([^<].*)$/.exec(word);
  if (!m) return undefined;
  const quoted = /["']/.test(m[2]);
  const name = m[2].replace(/["']/g, '');
  return name === '' ? undefined : { name, chomp: m[1] === '-', expand: !quoted };
}

/** Reads the bodies of every `<<NAME` word on the line, in order, from the lines that follow it. */
function readHeredocs(ctx: Ctx, rest: string): Heredoc[] {
  const docs: Heredoc[] = [];
  for (const w of splitWords(rest, ctx.escape)) {
    const marker = heredocMarker(w);
    if (!marker) continue;
    docs.push({ ...marker, content: ctx.reader.readHeredoc(marker.name, marker.chomp, ctx.line) });
  }
  return docs;
}

const MIN_DURATION_NS = 1e6; // docker refuses non-zero healthcheck durations under 1ms

function parseHealthcheck(ctx: Ctx, args: string): HealthcheckInstruction {
  const spec: FlagSpec = { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' };
  const { flags, rest } = flagsFor(ctx, 'HEALTHCHECK', args, spec);
  const m = /^(\S*)\s*([\s\S]*)$/.exec(rest)!;
  const type = m[1].toUpperCase();
  const line = ctx.line;
  if (type === 'NONE') {
    if (m[2] !== '' || flags.size > 0) fail(ctx, 'HEALTHCHECK NONE takes no other arguments');
    return { kind: 'HEALTHCHECK', line, test: ['NONE'] };
  }
  if (type !== 'CMD') fail(ctx, `HEALTHCHECK expects NONE or CMD, got ${JSON.stringify(m[1])}`);
  if (m[2].trim() === '') fail(ctx, 'HEALTHCHECK CMD requires a command');
  const json = parseJsonArray(m[2]);
  const hc: HealthcheckInstruction = { kind: 'HEALTHCHECK', line, test: json ? ['CMD', ...json] : ['CMD-SHELL', m[2].trim()] };
  for (const [flag, field] of [['interval', 'interval'], ['timeout', 'timeout'], ['start-period', 'startPeriod'], ['start-interval', 'startInterval']] as const) {
    const v = flags.get(flag)?.[0];
    if (v === undefined) continue;
    const ns = parseDuration(v);
    if (ns === undefined) fail(ctx, `HEALTHCHECK --${flag}: invalid duration ${JSON.stringify(v)}`);
    if (ns !== 0 && ns < MIN_DURATION_NS) fail(ctx, `HEALTHCHECK --${flag} ${v} can not be less than 1ms`);
    hc[field] = ns;
  }
  const retries = flags.get('retries')?.[0];
  if (retries !== undefined) {
    if (!/^[0-9]+$/.test(retries)) fail(ctx, `HEALTHCHECK --retries must be a non-negative integer, got ${JSON.stringify(retries)}`);
    hc.retries = Number(retries);
  }
  return hc;
}
