// Builder flags (`--mount=…`, `--from=…`, `--link`) at the start of an instruction's arguments, and
// Go-style durations for HEALTHCHECK, which docker stores in nanoseconds.

export interface RawFlag {
  name: string;
  /** undefined for a bare `--flag` */
  value: string | undefined;
}

/** Takes leading `--name[=value]` words off `args`; a lone `--` ends the flags. Quotes group words. */
export function extractFlags(args: string): { flags: RawFlag[]; rest: string } {
  const flags: RawFlag[] = [];
  let pos = 0;
  for (;;) {
    while (args[pos] === ' ' || args[pos] === '\t') pos++;
    if (!args.startsWith('--', pos)) break;
    let end = pos;
    let quote = '';
    while (end < args.length) {
      const ch = args[end];
      if (quote === '' && (ch === ' ' || ch === '\t')) break;
      if (quote === '' && (ch === '"' || ch === "'")) quote = ch;
      else if (ch === quote) quote = '';
      end++;
    }
    const word = args.slice(pos + 2, end);
    pos = end;
    if (word === '') break; // `--` ends the flags
    const eq = word.indexOf('=');
    flags.push(eq < 0 ? { name: word, value: undefined } : { name: word.slice(0, eq), value: word.slice(eq + 1) });
  }
  return { flags, rest: args.slice(pos).trim() };
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Parses a Go duration (`30s`, `1m30s`, `1.5h`, `250ms`, `0`) into nanoseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m || m[1] === '' || m[1] === '.') return undefined;
    total += Number(m[1]) * UNIT_NS[m[2]];
    pos = re.lastIndex;
  }
  return pos === 0 ? undefined : Math.round(total);
}
