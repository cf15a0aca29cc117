// ProgressEvents (docker's wording) → docker's JSON progress messages, the lines `docker pull`
// draws its bars from: {"status","progressDetail":{"current","total"},"progress","id"}.
import type { ProgressEvent } from '../../util/progress.ts';

export interface JsonMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  stream?: string;
  aux?: unknown;
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** docker's units.HumanSize: decimal, 4 significant digits ("1.234MB", "512B"). */
export function humanSize(bytes: number): string {
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${UNITS[i]}`;
}

/** docker's progress bar text: "[=====>      ]  1.2MB/3.4MB". */
export function progressBar(current: number, total: number | undefined): string {
  if (!total || total <= 0) return current > 0 ? humanSize(current).padStart(8) : '';
  const filled = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  return `[${'='.repeat(filled)}>${' '.repeat(Math.max(0, 50 - filled))}] ${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

/** Translates one event; layers get docker's "Pulling fs layer" line when first seen. */
export function pullMessages(): (e: ProgressEvent) => JsonMessage[] {
  const seen = new Set<string>();
  return (e) => {
    const out: JsonMessage[] = [];
    if (!seen.has(e.id)) {
      seen.add(e.id);
      if (e.status !== 'Already exists') out.push({ status: 'Pulling fs layer', progressDetail: {}, id: e.id });
    }
    if (e.status === 'Downloading' || e.status === 'Pushing' || e.status === 'Extracting') {
      const current = e.current ?? 0;
      out.push({ status: e.status, progressDetail: { current, total: e.total }, progress: progressBar(current, e.total), id: e.id });
    } else {
      out.push({ status: e.status, progressDetail: {}, id: e.id });
    }
    return out;
  };
}
