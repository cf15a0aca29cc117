// The physical-line layer of the Dockerfile format: parser directives at the top, comments, line
// continuations (the escape character at the end of a line), and here-document bodies, which are read
// raw — no comment stripping or continuation joining happens inside them.

import { KrError } from '../../util/errors.ts';
import type { EscapeChar } from './types.ts';

const DIRECTIVE = /^#[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*(.*?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const COMMENT = /^[ \t]*#/;

export interface LogicalLine {
  /** 1-based number of the first physical line. */
  line: number;
  /** The joined text: continuation escapes removed, comment lines inside it dropped, leading space trimmed. */
  text: string;
}

export class LineReader {
  readonly file: string;
  readonly escape: EscapeChar;
  readonly directives: Record<string, string> = {};
  private readonly lines: string[];
  private index = 0;
  private readonly continuation: RegExp;

  constructor(text: string, file: string) {
    this.file = file;
    this.lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
    // Docker splits on \n and tolerates \r\n; a lone trailing '' from the final newline is harmless.
    this.readDirectives();
    const e = this.directives.escape ?? '\\';
    if (e !== '\\' && e !== '`') throw this.error(1, `invalid escape directive ${JSON.stringify(e)}: must be \` or \\`);
    this.escape = e;
    this.continuation = new RegExp((e === '\\' ? '\\\\' : '`') + '[ \\t]*$');
  }

  error(line: number, message: string): KrError {
    return new KrError('invalid', `${this.file}:${line}: ${message}`);
  }

  /**
   * Directives are `# name=value` lines before anything else. The first line that is not a known
   * directive — a comment, an empty line, an unknown directive, an instruction — ends the section.
   */
  private readDirectives(): void {
    while (this.index < this.lines.length) {
      const m = DIRECTIVE.exec(this.lines[this.index]);
      if (!m) return;
      const name = m[1].toLowerCase();
      if (!KNOWN_DIRECTIVES.has(name)) return;
      if (name in this.directives) throw this.error(this.index + 1, `only one ${name} parser directive can be used`);
      this.directives[name] = m[2];
      this.index++;
    }
  }

  /** The next instruction line, or undefined at the end. */
  next(): LogicalLine | undefined {
    while (this.index < this.lines.length) {
      const first = this.lines[this.index++];
      if (COMMENT.test(first) || first.trim() === '') continue;
      const line = this.index;
      let [text, more] = this.trimContinuation(first.replace(/^[ \t]+/, ''));
      while (more && this.index < this.lines.length) {
        const next = this.lines[this.index++];
        // Comment lines and empty lines inside a continuation are skipped; the continuation goes on.
        if (COMMENT.test(next) || next.trim() === '') continue;
        let piece: string;
        [piece, more] = this.trimContinuation(next);
        text += piece;
      }
      if (text.trim() === '') continue;
      return { line, text: text.trimEnd() };
    }
    return undefined;
  }

  private trimContinuation(line: string): [string, boolean] {
    const m = this.continuation.exec(line);
    return m ? [line.slice(0, m.index), true] : [line, false];
  }

  /** Reads a here-document body up to its delimiter line (after the instruction that opened it). */
  readHeredoc(name: string, chomp: boolean, openedAt: number): string {
    const body: string[] = [];
    while (this.index < this.lines.length) {
      let l = this.lines[this.index++];
      if (chomp) l = l.replace(/^\t+/, '');
      if (l === name) return body.length === 0 ? '' : body.join('\n') + '\n';
      body.push(l);
    }
    throw this.error(openedAt, `unterminated heredoc <<${name}`);
  }
}
