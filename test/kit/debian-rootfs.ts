// A Debian minbase root filesystem made by debootstrap from the machine's own Debian mirror
// (the package registry tests may use), as a plain tar, cached between runs because it takes
// a minute or two to make.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function testCacheDir(): string {
  const dir = process.env.KRAUD_TEST_CACHE || path.join(os.homedir(), '.cache', 'kraud-test');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** The Debian mirror apt uses here (deb.debian.org when nothing else is configured). */
function debianMirror(): string {
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    try {
      const text = fs.readFileSync(file, 'utf8');
      const m = /^URIs:\s*(\S+\/debian)\s*$/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s+/m.exec(text);
      if (m) return m[1];
    } catch {
      /* try the next file */
    }
  }
  return 'http://deb.debian.org/debian';
}

/** Path of a tar of a bookworm minbase rootfs; made once with debootstrap, then reused. */
export function debianMinbaseTar(): string {
  const out = path.join(testCacheDir(), 'debian-bookworm-minbase.tar');
  if (fs.existsSync(out)) return out;
  const work = fs.mkdtempSync(path.join(testCacheDir(), 'debootstrap-'));
  try {
    const root = path.join(work, 'root');
    execFileSync('debootstrap', ['--variant=minbase', 'bookworm', root, debianMirror()], { stdio: ['ignore', 'ignore', 'pipe'] });
    fs.rmSync(path.join(root, 'var', 'cache', 'apt', 'archives'), { recursive: true, force: true });
    fs.mkdirSync(path.join(root, 'var', 'cache', 'apt', 'archives', 'partial'), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    execFileSync('tar', ['--numeric-owner', '--xattrs', '-C', root, '-cf', tmp, '.']);
    fs.renameSync(tmp, out);
    return out;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
