// ps's output for given pids, read from /proc: for where there is no ps (a pod VM's guest has
// none). Only docker top's usual forms: `-ef` (docker's default) and `aux`, in procps's columns and
// formats, so ./top.ts applies docker's rules to it as it does to the real ps's output.
import { readFile } from 'node:fs/promises';
import { KrError } from '../util/errors.ts';

/** USER_HZ: what /proc/<pid>/stat counts clock ticks in, 100 on every Linux x86 and arm. */
const HZ = 100;
const PAGE = 4096;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

interface Proc {
  pid: number;
  ppid: number;
  state: string;
  session: number;
  pgrp: number;
  tpgid: number;
  tty: string;
  threads: number;
  cpuTicks: number;
  startTicks: number;
  vszKiB: number;
  rssKiB: number;
  user: string;
  command: string;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** A tty device number as ps names it (pts/N, ttyN, ttySN; ? for none). */
function ttyName(nr: number): string {
  const major = (nr >> 8) & 0xfff;
  const minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
  if (nr === 0) return '?';
  if (major >= 136 && major <= 143) return `pts/${(major - 136) * 256 + minor}`;
  if (major === 4) return minor < 64 ? `tty${minor}` : `ttyS${minor - 64}`;
  return '?';
}

/** ps's start column: HH:MM within a day, MmmDD within a year, else the year. */
function startText(at: Date, now: Date): string {
  const age = now.getTime() - at.getTime();
  if (age < 24 * 3600_000) return `${pad2(at.getHours())}:${pad2(at.getMinutes())}`;
  if (age < 365 * 24 * 3600_000) return `${MONTHS[at.getMonth()]}${pad2(at.getDate())}`;
  return String(at.getFullYear());
}

async function readSmall(path: string, max = 64 * 1024): Promise<string | null> {
  const b = await readFile(path).catch(() => null);
  return b ? b.subarray(0, max).toString('utf8') : null;
}

/** uid → name from the process's own root (the container's /etc/passwd); the number if absent. */
async function userName(pid: number, uid: number, cache: Map<string, Map<number, string>>): Promise<string> {
  const root = `/proc/${pid}/root/etc/passwd`;
  let names = cache.get(root);
  if (!names) {
    names = new Map();
    for (const line of ((await readSmall(root, 1 << 20)) ?? '').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id !== undefined && /^\d+$/.test(id) && !names.has(Number(id))) names.set(Number(id), name);
    }
    cache.set(root, names);
  }
  return names.get(uid) ?? String(uid);
}

async function readProc(pid: number, names: Map<string, Map<number, string>>): Promise<Proc | null> {
  const [stat, status, cmdline] = await Promise.all([readSmall(`/proc/${pid}/stat`), readSmall(`/proc/${pid}/status`), readSmall(`/proc/${pid}/cmdline`, 1 << 20)]);
  if (stat === null || status === null) return null; // gone meanwhile
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  // fields from 3 (state) on, as proc(5) numbers them
  const f = stat.slice(close + 2).split(' ');
  const field = (n: number) => Number(f[n - 3]);
  // the effective uid, as ps -f's UID and aux's USER show
  const uid = Number(/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const args = (cmdline ?? '').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  return {
    pid,
    ppid: field(4),
    state: f[0] ?? '?',
    pgrp: field(5),
    session: field(6),
    tty: ttyName(field(7)),
    tpgid: field(8),
    cpuTicks: field(14) + field(15),
    threads: field(20),
    startTicks: field(22),
    vszKiB: Math.floor(field(23) / 1024),
    rssKiB: field(24) * (PAGE / 1024),
    user: await userName(pid, uid, names),
    // kernel threads and zombies have no command line: ps shows [comm]
    command: (args.length ? args.join(' ') : `[${comm}]`).replace(/[\x00-\x1f\x7f]/g, '?'), // as ps shows control characters
  };
}

/** The table as procps prints it: columns left-aligned to their widest cell, the last unpadded. */
function table(rows: string[][], rightAligned: Set<number>): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : rightAligned.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join(' ')).join('\n') + '\n';
}

/** `ps ARGS` over these pids, from /proc; ARGS must be docker's default `-ef` or `aux`. */
export async function procPs(psArgs: string[], pids: number[]): Promise<string> {
  const form = psArgs.join(' ').trim();
  const full = form === '-ef' || form === '-e -f' || form === '-fe';
  if (!full && form !== 'aux' && form !== '-aux') throw new KrError('invalid', `ps_args ${JSON.stringify(form)}: here there is no ps, only its -ef and aux forms`);
  const [uptimeText, statText, memText] = await Promise.all([readSmall('/proc/uptime'), readSmall('/proc/stat', 1 << 20), readSmall('/proc/meminfo')]);
  const bootMs = Number(/^btime (\d+)/m.exec(statText ?? '')?.[1] ?? 0) * 1000;
  const uptime = Number((uptimeText ?? '0').split(' ')[0]);
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(memText ?? '')?.[1] ?? 0);
  const now = new Date();
  const names = new Map<string, Map<number, string>>();
  const procs = (await Promise.all([...new Set(pids)].map((p) => readProc(p, names)))).filter((p): p is Proc => p !== null);
  const pcpu = (p: Proc) => {
    const elapsed = uptime - p.startTicks / HZ;
    return elapsed > 0 ? (p.cpuTicks / HZ / elapsed) * 100 : 0;
  };
  const started = (p: Proc) => startText(new Date(bootMs + (p.startTicks / HZ) * 1000), now);
  const secs = (p: Proc) => Math.floor(p.cpuTicks / HZ);
  if (full) {
    const time = (s: number) => `${s >= 86400 ? `${Math.floor(s / 86400)}-` : ''}${pad2(Math.floor(s / 3600) % 24)}:${pad2(Math.floor(s / 60) % 60)}:${pad2(s % 60)}`;
    const rows = [['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'], ...procs.map((p) => [p.user, String(p.pid), String(p.ppid), String(Math.floor(pcpu(p))), started(p), p.tty, time(secs(p)), p.command])];
    return table(rows, new Set([1, 2, 3]));
  }
  const stat = (p: Proc) => `${p.state}${p.session === p.pid ? 's' : ''}${p.threads > 1 ? 'l' : ''}${p.tpgid === p.pgrp && p.tpgid > 0 ? '+' : ''}`;
  const mem = (p: Proc) => (memKiB ? ((p.rssKiB / memKiB) * 100).toFixed(1) : '0.0');
  const rows = [
    ['USER', 'PID', '%CPU', '%MEM', 'VSZ', 'RSS', 'TTY', 'STAT', 'START', 'TIME', 'COMMAND'],
    ...procs.map((p) => [p.user, String(p.pid), pcpu(p).toFixed(1), mem(p), String(p.vszKiB), String(p.rssKiB), p.tty, stat(p), started(p), `${Math.floor(secs(p) / 60)}:${pad2(secs(p) % 60)}`, p.command]),
  ];
  return table(rows, new Set([1, 2, 3, 4, 5]));
}
