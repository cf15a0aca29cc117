// Detach keys on a hijacked attach (docker's --detach-keys, default ctrl-p,ctrl-q): the client's
// input is scanned for the sequence; when it shows up the connection ends (its keys are not
// passed on) and the container keeps running. The docker CLI also catches the keys itself for
// tty sessions; this covers API clients and attaches without a tty. Unlike dockerd, which only
// matches keys that arrive one per read (keypresses), the sequence is found anywhere in the
// stream; a prefix that turns out not to be the sequence is passed on unchanged.
import { KrError } from '../../util/errors.ts';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** "ctrl-p,ctrl-q", "a,ctrl-@" … → the bytes; docker's 400 for anything else. */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const key of spec.split(',')) {
    const k = key.trim().toLowerCase();
    if (key.trim().length === 1) out.push(key.trim().charCodeAt(0));
    else if (/^ctrl-[a-z@[\\\]^_]$/.test(k)) out.push(k === 'ctrl-@' ? 0 : k.charCodeAt(5) >= 97 ? k.charCodeAt(5) - 96 : k.charCodeAt(5) - 64);
    else throw new KrError('invalid', `Invalid detach keys (${spec}) provided`);
  }
  return Buffer.from(out);
}

/** Feeds input through; `push` returns what to pass on, and whether the sequence completed. */
export class DetachScanner {
  private readonly keys: Buffer;
  /** How many bytes of the sequence the input ended with so far (held back). */
  private matched = 0;

  constructor(keys: Buffer) {
    this.keys = keys;
  }

  push(chunk: Buffer): { forward: Buffer; detach: boolean } {
    if (this.keys.length === 0) return { forward: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.matched]) {
        if (++this.matched === this.keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      // not the sequence after all: what was held back goes on, then this byte starts over
      for (let i = 0; i < this.matched; i++) out.push(this.keys[i]);
      this.matched = b === this.keys[0] ? 1 : 0;
      if (this.matched === 0) out.push(b);
    }
    return { forward: Buffer.from(out), detach: false };
  }
}
