// .dockerignore as Docker reads it — which is not gitignore:
//  - every pattern is relative to the context root (`*.md` matches only at the top; use `**/*.md`);
//  - a pattern that matches a directory excludes everything below it;
//  - `**` matches any number of directories (including none), `*`/`?` stay inside one path segment,
//    `[...]` is a character class, `\` escapes the next character;
//  - `!pattern` re-includes; the last pattern that matches a path decides;
//  - leading `/`, `./`, `..`-free cleaning and surrounding spaces do not change a pattern; `#` lines are comments.

import { readdir } from 'node:fs/promises';
import path from 'node:path';

interface Pattern {
  text: string;
  exception: boolean;
  regex: RegExp;
  segments: string[];
}

/** The patterns of a .dockerignore file, cleaned, in order (exceptions keep their `!`). */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (raw.startsWith('#')) continue;
    const p = cleanPattern(raw);
    if (p !== undefined) out.push(p);
  }
  return out;
}

function cleanPattern(raw: string): string | undefined {
  let p = raw.trim();
  if (p === '') return undefined;
  const exception = p.startsWith('!');
  if (exception) p = p.slice(1).trim();
  if (p !== '') {
    p = path.posix.normalize(p);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  }
  return exception ? '!' + p : p;
}

function compile(line: string): Pattern {
  const exception = line.startsWith('!');
  const text = exception ? line.slice(1) : line;
  let src = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '*') {
      if (text[i + 1] === '*') {
        i++;
        if (text[i + 1] === '/') i++;
        // `**` at the end matches everything below; elsewhere any number of whole directories.
        src += i + 1 >= text.length ? '.*' : '(?:.*/)?';
      } else src += '[^/]*';
    } else if (ch === '?') src += '[^/]';
    else if (ch === '[') {
      const end = text.indexOf(']', i + 1);
      if (end < 0) src += '\\[';
      else {
        let body = text.slice(i + 1, end);
        if (body.startsWith('^') || body.startsWith('!')) body = '^' + body.slice(1);
        src += '[' + body.replace(/\\(?!\])/g, '\\\\') + ']';
        i = end;
      }
    } else if (ch === '\\' && i + 1 < text.length) src += escapeRegex(text[++i]);
    else src += escapeRegex(ch);
  }
  return { text, exception, regex: new RegExp('^' + src + '$'), segments: text.split('/') };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function segmentRegex(segment: string): RegExp {
  return compile(segment).regex;
}

export interface IgnoreMatcher {
  /** Whether the context path (relative, `/`-separated) is left out of the build context. */
  ignored(relPath: string, isDir: boolean): boolean;
  /** Whether some exception pattern could re-include a path below this (excluded) directory. */
  mayIncludeBelow(relDir: string): boolean;
}

/** A matcher over .dockerignore patterns (lines; comments and blanks are skipped). */
export function matcher(patterns: readonly string[]): IgnoreMatcher {
  const compiled = patterns
    .filter((p) => !p.startsWith('#'))
    .map(cleanPattern)
    .filter((p): p is string => p !== undefined && p !== '!' && p !== '')
    .map(compile);
  const exceptions = compiled.filter((p) => p.exception);

  // A pattern matches a path when it matches the path itself or any of its parent directories.
  const matches = (p: Pattern, parts: string[]): boolean => {
    for (let n = parts.length; n >= 1; n--) if (p.regex.test(parts.slice(0, n).join('/'))) return true;
    return false;
  };

  return {
    ignored(relPath: string): boolean {
      const clean = path.posix.normalize(relPath.replace(/^\/+/, '')).replace(/\/+$/, '');
      if (clean === '.' || clean === '') return false;
      const parts = clean.split('/');
      let excluded = false;
      for (const p of compiled) {
        // Later patterns override earlier ones; only one that would flip the verdict needs testing.
        if (excluded !== !p.exception && matches(p, parts)) excluded = !p.exception;
      }
      return excluded;
    },
    mayIncludeBelow(relDir: string): boolean {
      const parts = path.posix.normalize(relDir).replace(/\/+$/, '').split('/');
      return exceptions.some((p) => couldMatchBelow(p.segments, 0, parts, 0));
    },
  };
}

/** Segment-wise: can pattern segments [i..] match some path strictly below dir segments [j..]? */
function couldMatchBelow(pat: string[], i: number, dir: string[], j: number): boolean {
  if (i >= pat.length) return true; // the exception matches the directory or an ancestor: all below is in
  if (pat[i] === '**') return true;
  if (j >= dir.length) return true; // the rest of the pattern can still match children
  return segmentRegex(pat[i]).test(dir[j]) && couldMatchBelow(pat, i + 1, dir, j + 1);
}

export interface ContextEntry {
  /** Relative to the context root, `/`-separated. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
}

/**
 * Every path in the build context that the patterns keep, sorted (by code unit), without entering
 * excluded directories unless an exception could re-include something inside them. Directories are
 * listed too (so empty ones survive a COPY); symlinks are reported, not followed.
 */
export async function walkContextEntries(root: string, patterns: readonly string[]): Promise<ContextEntry[]> {
  const m = matcher(patterns);
  const out: ContextEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(rel === '' ? root : path.join(root, rel), { withFileTypes: true });
    for (const e of entries) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      const isDir = e.isDirectory();
      const ignored = m.ignored(p, isDir);
      if (isDir) {
        if (!ignored) out.push({ path: p, type: 'dir' });
        if (!ignored || m.mayIncludeBelow(p)) await walk(p);
        continue;
      }
      if (!ignored) out.push({ path: p, type: e.isSymbolicLink() ? 'symlink' : e.isFile() ? 'file' : 'other' });
    }
  };
  await walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The included non-directory paths of the context (files, symlinks), relative and sorted. */
export async function walkContext(root: string, patterns: readonly string[]): Promise<string[]> {
  return (await walkContextEntries(root, patterns)).filter((e) => e.type !== 'dir').map((e) => e.path);
}

/** A whole-path wildcard (`*`, `?`, `[...]` within one component) as a RegExp, for COPY sources. */
export function pathPatternRegex(pattern: string): RegExp {
  return compile(pattern).regex;
}
