// Draws ProgressEvents on a terminal (stderr) the way docker pull does: one line per id,
// redrawn in place. Off a terminal it draws nothing: scripts and logs get results and errors only.
import type { ProgressEvent, ProgressSink } from '../util/progress.ts';

function human(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)}${units[i]}`;
}

export function formatProgress(e: ProgressEvent): string {
  if (e.total && e.current !== undefined) {
    const width = 40;
    const filled = Math.min(width, Math.floor((e.current / e.total) * width));
    const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? '>' : '') + ' '.repeat(width - filled);
    return `${e.id}: ${e.status} [${bar}] ${human(e.current)}/${human(e.total)}`;
  }
  return `${e.id}: ${e.status}${e.current !== undefined ? ` ${human(e.current)}` : ''}`;
}

const finalWords = /complete|exists|Pushed|Digest|Status|Packed|Signed/;

export function progressBars(stream: NodeJS.WriteStream = process.stderr): ProgressSink {
  if (!stream.isTTY) return () => {};
  const lines: string[] = [];
  const index = new Map<string, number>();
  let drawn = 0;
  let last = 0;
  const draw = (force: boolean): void => {
    const now = Date.now();
    if (!force && now - last < 80) return;
    last = now;
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const l of lines) out += `\x1b[2K${l.slice(0, (stream.columns || 120) - 1)}\n`;
    drawn = lines.length;
    stream.write(out);
  };
  return (e) => {
    let i = index.get(e.id);
    if (i === undefined) {
      i = lines.length;
      index.set(e.id, i);
      lines.push('');
    }
    lines[i] = formatProgress(e);
    draw(finalWords.test(e.status) || e.current === undefined);
  };
}
