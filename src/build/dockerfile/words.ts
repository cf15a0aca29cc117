// Docker's word handling, in two steps like BuildKit's:
//  1. splitWords (parse time): split an argument list on whitespace, but not inside quotes or after the
//     escape character; quotes and escapes stay in the words, because substitution needs them later.
//  2. processWord (expand time): variable substitution plus removal of quotes and escapes, following
//     the rules of Docker's shell lexer (single quotes literal, `${…}` modifiers, escape char).

import { KrError } from '../../util/errors.ts';
import type { EscapeChar } from './types.ts';

/** Splits on unquoted, unescaped whitespace. Quote characters and escapes are kept verbatim. */
export function splitWords(text: string, escape: EscapeChar): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote === '' && (ch === ' ' || ch === '\t')) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    word += ch;
    if (ch === escape && quote !== "'" && i + 1 < text.length) {
      word += text[++i];
    } else if (quote === '' && (ch === '"' || ch === "'")) {
      quote = ch;
    } else if (ch === quote) {
      quote = '';
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Variables visible to substitution; `undefined` means unset (which differs from empty for `${X-d}`). */
export type Lookup = (name: string) => string | undefined;

/** Runs Docker's substitution and quote removal over one word (no splitting). */
export function processWord(word: string, lookup: Lookup, escape: EscapeChar = '\\'): string {
  const lexer = new WordLexer(word, lookup, escape);
  const out = lexer.until('');
  return out;
}

const NAME_CHAR = /[A-Za-z0-9_]/;

class WordLexer {
  private pos = 0;
  private readonly text: string;
  private readonly lookup: Lookup;
  private readonly escape: EscapeChar;
  constructor(text: string, lookup: Lookup, escape: EscapeChar) {
    this.text = text;
    this.lookup = lookup;
    this.escape = escape;
  }

  private peek(): string {
    return this.text[this.pos] ?? '';
  }

  private fail(why: string): never {
    throw new KrError('invalid', `${why} in ${JSON.stringify(this.text)}`);
  }

  /** Processes characters until `stop` (not consumed) or the end; stop '' means the end only. */
  until(stop: string): string {
    let out = '';
    while (this.pos < this.text.length) {
      const ch = this.peek();
      if (stop !== '' && ch === stop) return out;
      if (ch === "'") out += this.singleQuoted();
      else if (ch === '"') out += this.doubleQuoted();
      else if (ch === '$') out += this.dollar();
      else {
        this.pos++;
        if (ch === this.escape) {
          // An escape at the very end vanishes; otherwise the next character is taken literally.
          if (this.pos >= this.text.length) break;
          out += this.text[this.pos++];
        } else out += ch;
      }
    }
    if (stop !== '') this.fail(`missing '${stop}'`);
    return out;
  }

  private singleQuoted(): string {
    const end = this.text.indexOf("'", this.pos + 1);
    if (end < 0) this.fail('unterminated single quote');
    const s = this.text.slice(this.pos + 1, end);
    this.pos = end + 1;
    return s;
  }

  private doubleQuoted(): string {
    this.pos++;
    let out = '';
    for (;;) {
      if (this.pos >= this.text.length) this.fail('unterminated double quote');
      const ch = this.peek();
      if (ch === '"') {
        this.pos++;
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.pos++;
      if (ch === this.escape) {
        const next = this.peek();
        // Inside double quotes only `"`, `$` and the escape itself can be escaped; other escapes stay.
        if (next === '"' || next === '$' || next === this.escape) {
          out += next;
          this.pos++;
          continue;
        }
      }
      out += ch;
    }
  }

  private name(): string {
    let name = '';
    // Positional-style names ($1) are digits only; ordinary names run over [A-Za-z0-9_].
    if (/[0-9]/.test(this.peek())) {
      while (/[0-9]/.test(this.peek())) name += this.text[this.pos++];
      return name;
    }
    while (this.pos < this.text.length && NAME_CHAR.test(this.peek())) name += this.text[this.pos++];
    return name;
  }

  private dollar(): string {
    this.pos++; // '$'
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      return this.lookup(name) ?? '';
    }
    this.pos++; // '{'
    const name = this.name();
    if (name === '') this.fail('bad substitution');
    const value = this.lookup(name);
    const op = this.peek();
    if (op === '') this.fail("missing '}'");
    if (op === '}') {
      this.pos++;
      return value ?? '';
    }
    let colon = false;
    let mod = op;
    this.pos++;
    if (op === ':') {
      colon = true;
      mod = this.peek();
      this.pos++;
    }
    if (mod === '-' || mod === '+' || mod === '?') {
      const word = this.until('}');
      this.pos++;
      // With a colon, empty counts as unset (POSIX `${X:-d}` vs `${X-d}`).
      const present = value !== undefined && (!colon || value !== '');
      if (mod === '-') return present ? (value as string) : word;
      if (mod === '+') return present ? word : '';
      if (!present) throw new KrError('invalid', `${name}: ${word || (colon ? 'is not allowed to be empty' : 'is not set')}`);
      return value as string;
    }
    if (!colon && (mod === '#' || mod === '%')) {
      const longest = this.peek() === mod;
      if (longest) this.pos++;
      const pattern = this.until('}');
      this.pos++;
      return trimPattern(value ?? '', pattern, mod === '#' ? 'prefix' : 'suffix', longest);
    }
    return this.fail(`bad substitution \${${name}${colon ? ':' : ''}${mod}`);
  }
}

/** Shell glob (`*`, `?`, `[...]`) to a regex source; everything else literal. */
function globSource(pattern: string): string {
  let src = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') src += '[\\s\\S]*';
    else if (ch === '?') src += '[\\s\\S]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) src += '\\[';
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        src += '[' + body.replace(/\\/g, '\\\\') + ']';
        i = end;
      }
    } else src += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return src;
}

/** `${X#p}`/`${X##p}` remove the shortest/longest matching prefix, `%`/`%%` the suffix. */
function trimPattern(value: string, pattern: string, side: 'prefix' | 'suffix', longest: boolean): string {
  const re = new RegExp('^(?:' + globSource(pattern) + ')$');
  const n = value.length;
  if (side === 'prefix') {
    for (let k = longest ? n : 0; longest ? k >= 0 : k <= n; k += longest ? -1 : 1) {
      if (re.test(value.slice(0, k))) return value.slice(k);
    }
  } else {
    for (let k = longest ? 0 : n; longest ? k <= n : k >= 0; k += longest ? 1 : -1) {
      if (re.test(value.slice(k))) return value.slice(0, k);
    }
  }
  return value;
}
