// extractTar against hostile archives: each one is extracted into a fresh root next to an "outside"
// area; nothing outside the root may change, and the verdict (refused with a one-line error naming
// the entry, or contained inside the root) must be the documented one. Then: a GNU tar rootfs
// extracts to the same tree GNU tar itself makes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extractTar, type ExtractOptions, type ExtractResult } from '../src/image/extract.ts';
import { isKrError } from '../src/util/errors.ts';
import { paxRecord, ustarBlock, END_OF_ARCHIVE } from '../src/image/tar/tar-writer.ts';

// ---- raw tar building: ustar blocks, optional PAX/GNU long-name blocks, optional raw patching ----

interface Raw {
  name: string;
  flag?: string; // typeflag, '0' by default
  data?: Buffer | string;
  size?: number; // declared size when it must differ from the data
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string | Buffer>;
  globalPax?: Record<string, string | Buffer>;
  gnuLongName?: string;
  patch?: (block: Buffer) => void; // edit the header block; the checksum is redone after
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

function withChecksum(b: Buffer): Buffer {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i];
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

function metaBlock(flag: string, name: string, body: Buffer): Buffer[] {
  return [ustarBlock({ name, typeflag: flag, size: body.length }), body, pad(body.length)];
}

function entryBytes(e: Raw): Buffer[] {
  const out: Buffer[] = [];
  const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
  const paxBody = (r: Record<string, string | Buffer>) => Buffer.concat(Object.entries(r).map(([k, v]) => paxRecord(k, v)));
  if (e.globalPax) out.push(...metaBlock('g', 'pax_global_header', paxBody(e.globalPax)));
  if (e.pax) out.push(...metaBlock('x', 'PaxHeaders/x', paxBody(e.pax)));
  if (e.gnuLongName !== undefined) out.push(...metaBlock('L', '././@LongLink', Buffer.from(e.gnuLongName + '\0', 'latin1')));
  const block = ustarBlock({
    name: e.name.slice(0, 100), typeflag: e.flag ?? '0', size: e.size ?? data.length, mode: e.mode ?? 0o644,
    uid: e.uid, gid: e.gid, linkname: e.linkname, devmajor: e.devmajor, devminor: e.devminor, mtime: 1_600_000_000,
  });
  if (e.patch) withChecksum((e.patch(block), block));
  out.push(block, data, pad(data.length));
  return out;
}

const tarOf = (entries: Raw[], end = true): Buffer => Buffer.concat([...entries.flatMap(entryBytes), ...(end ? [END_OF_ARCHIVE] : [])]);

// ---- the sandbox: parent/{outside/..., w/sibling, w/root}; everything but root is watched ----

const X = `kr-escape-${process.pid}-${randomBytes(4).toString('hex')}`; // the name escapes would create

interface Sandbox { parent: string; root: string }

function sandbox(): Sandbox {
  const parent = mkdtempSync('/tmp/kr-hostile-');
  mkdirSync(join(parent, 'outside/etc'), { recursive: true });
  writeFileSync(join(parent, 'outside/sentinel'), 'do not touch\n');
  writeFileSync(join(parent, 'outside/etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  mkdirSync(join(parent, 'w/root'), { recursive: true });
  writeFileSync(join(parent, 'w/sibling'), 'sibling\n');
  return { parent, root: join(parent, 'w/root') };
}

/** Every path under dir (but `skip`) with its type, mode, owner, size, mtime, content hash, link. */
function snapshot(dir: string, skip: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const name of readdirSync(p)) {
      const full = join(p, name);
      if (full === skip) continue;
      const st = lstatSync(full);
      let extra = '';
      if (st.isFile()) extra = createHash('sha256').update(readFileSync(full)).digest('hex');
      if (st.isSymbolicLink()) extra = readlinkSync(full);
      out.push(`${full} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${st.nlink} ${extra}`);
      if (st.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return out.sort();
}

/** Places a successful escape would land that the parent snapshot cannot see. */
const farTargets = () => ['/', '/etc', '/tmp', '/root'].map((d) => join(d, X));

type Verdict =
  | { refuse: string } // the error message must contain this (a fragment of the entry name or the reason)
  | { contained: (root: string, r: ExtractResult) => void };

/** `skippable` false: refused in 'skip' mode too (limits, broken archives). */
async function expectSafe(entries: Raw[] | Buffer, verdict: Verdict, opts: ExtractOptions = {}, skippable = true): Promise<void> {
  const bytes = Buffer.isBuffer(entries) ? entries : tarOf(entries);
  const modes: ExtractOptions[] = 'refuse' in verdict ? [{ ...opts }, { ...opts, onHostile: 'skip' }] : [{ ...opts }];
  for (const mode of modes) {
    const box = sandbox();
    try {
      const before = snapshot(box.parent, box.root);
      let result: ExtractResult | null = null;
      let error: unknown = null;
      try {
        result = await extractTar(Readable.from([bytes]), box.root, mode);
      } catch (err) {
        error = err;
      }
      assert.deepEqual(snapshot(box.parent, box.root), before, 'nothing outside the root changed');
      for (const p of farTargets()) assert.equal(existsSync(p), false, `${p} must not exist`);
      if ('refuse' in verdict && (mode.onHostile !== 'skip' || !skippable)) {
        assert.ok(isKrError(error, 'corrupt'), `refused with KrError corrupt, got ${String(error)}`);
        const msg = (error as Error).message;
        assert.ok(!msg.includes('\n'), 'one line');
        assert.ok(msg.includes(verdict.refuse), `"${msg}" names ${verdict.refuse}`);
      } else if ('refuse' in verdict) {
        assert.equal(error, null, `skip mode extracts the rest: ${String(error)}`);
        assert.ok(result!.hostileSkipped >= 1, 'the hostile entry is counted');
      } else {
        assert.equal(error, null, String(error));
        verdict.contained(box.root, result!);
      }
    } finally {
      rmSync(box.parent, { recursive: true, force: true });
    }
  }
}

const file = (name: string, data = 'x\n', more: Partial<Raw> = {}): Raw => ({ name, data, ...more });
const symlink = (name: string, target: string): Raw => ({ name, flag: '2', linkname: target, mode: 0o777 });
const hardlink = (name: string, target: string, more: Partial<Raw> = {}): Raw => ({ name, flag: '1', linkname: target, ...more });
const dir = (name: string, mode = 0o755): Raw => ({ name, flag: '5', mode });

// ---- the hostile corpus ----

const refuse = (fragment: string): Verdict => ({ refuse: fragment });

test('1 ../x', () => expectSafe([file(`../${X}`)], refuse(`../${X}`)));
test('2 a/../../x', () => expectSafe([file(`a/../../${X}`)], refuse('climbs above the root')));
test('3 ./../x', () => expectSafe([file(`./../${X}`)], refuse('climbs above the root')));
test('4 deep ../../../../ climb', () => expectSafe([file(`a/b/../../../../../../${X}`)], refuse('climbs')));
test('5 absolute /etc/x is made relative to the root', () =>
  expectSafe([file(`/etc/${X}`, 'in\n')], { contained: (root) => assert.equal(readFileSync(join(root, 'etc', X), 'utf8'), 'in\n') }));
test('6 symlink a -> / then a/etc/x', () => expectSafe([symlink('a', '/'), file(`a/etc/${X}`)], refuse('is a symlink')));
test('7 symlink a -> .. then a/x', () => expectSafe([symlink('a', '..'), file(`a/${X}`)], refuse('is a symlink')));
test('8 symlink chain a -> b, b -> ../.. then a/x', () =>
  expectSafe([symlink('a', 'b'), symlink('b', '../..'), file(`a/${X}`)], refuse('is a symlink')));
test('9 hardlink to /etc/passwd', () => expectSafe([hardlink('l', '/etc/passwd')], refuse('hardlink target')));
test('10 hardlink to ../outside', () => expectSafe([hardlink('l', '../../outside/sentinel')], refuse('climbs above the root')));
test('11 hardlink through a symlinked parent', () =>
  expectSafe([symlink('s', '../../outside'), hardlink('l', 's/sentinel')], refuse('is a symlink')));
test('12 hardlink to a symlink that points outside', () =>
  expectSafe([symlink('s', '../../outside/sentinel'), hardlink('l', 's')], refuse('not a file extracted earlier')));
test('13 dir a, then a -> outside, then a/x (the replaced-dir trick)', () =>
  expectSafe([dir('a'), file('a/keep'), symlink('a', '../../outside'), file(`a/${X}`)], refuse('is a symlink')));
test('14 a file named "."', () => expectSafe([file('.')], refuse('named like the root')));
test('15 a file with an empty name', () => expectSafe([file('')], refuse('named like the root')));
test('16 NUL in a name (PAX path)', () => expectSafe([file('p', 'x', { pax: { path: `ok\0/../../${X}` } })], refuse('NUL')));
test('17 over-long path', () => expectSafe([file('long', 'x', { pax: { path: 'd/'.repeat(300) + X } })], refuse('limit'), { maxPathLength: 512 }));
test('18 over-long name component', () => expectSafe([file('c', 'x', { pax: { path: 'n'.repeat(300) } })], refuse('over 255 bytes')));
test('19 huge declared size, truncated data', () =>
  expectSafe(tarOf([file('big', 'only this', { size: 1 << 30 })], false), refuse('truncated tar'), {}, false));
test('20 garbage in the size field', () =>
  expectSafe([file('g', 'x', { patch: (b) => b.write('12zz!!', 124, 'latin1') }), file(`../${X}`)], refuse('invalid size'), {}, false));
test('21 negative base-256 size', () =>
  expectSafe([file('n', 'x', { patch: (b) => (b.fill(0xff, 124, 135), (b[135] = 0xf0)) }), file(`../${X}`)], refuse('invalid size'), {}, false));
test('22 device nodes are skipped when not allowed', () =>
  expectSafe([{ name: 'dev/sda', flag: '4', devmajor: 8, devminor: 0 }, { name: 'dev/mem', flag: '3', devmajor: 1, devminor: 1 }], {
    contained: (root, r) => {
      assert.equal(r.devicesSkipped, 2);
      assert.equal(existsSync(join(root, 'dev/sda')), false);
      assert.equal(existsSync(join(root, 'dev/mem')), false);
    },
  }));
test('23 PAX path= override that escapes', () => expectSafe([file('innocent', 'x', { pax: { path: `../../${X}` } })], refuse(`../../${X}`)));
test('24 PAX linkpath escape for a hardlink', () =>
  expectSafe([file('f'), hardlink('l', 'f', { pax: { linkpath: '../../outside/sentinel' } })], refuse('hardlink target')));
test('25 GNU long name that escapes', () => expectSafe([file('short', 'x', { gnuLongName: `../../${X}` })], refuse('climbs')));
test('26 PAX global header path= that escapes', () =>
  expectSafe([file('a', 'x', { globalPax: { path: `../${X}` } })], refuse('climbs')));
test('27 more entries than maxEntries', () =>
  expectSafe(Array.from({ length: 40 }, (_, i) => file(`f${i}`)), refuse('more than 10 entries'), { maxEntries: 10 }, false));
test('28 more data than maxBytes', () =>
  expectSafe([file('a', 'a'.repeat(1500)), file('b', 'b'.repeat(1500))], refuse('2000-byte limit'), { maxBytes: 2000 }, false));
test('29 a fifo where a directory is expected', () => expectSafe([{ name: 'p', flag: '6' }, file('p/x')], refuse('not a directory')));
test('30 a file where a directory is expected', () => expectSafe([file('f'), file(`f/${X}`)], refuse('not a directory')));
test('31 setuid file stays inside the root', () =>
  expectSafe([file('bin/su', '#!/bin/sh\n', { mode: 0o4755 })], {
    contained: (root) => assert.equal(lstatSync(join(root, 'bin/su')).mode & 0o7777, 0o4755),
  }));
test('32 xattrs: trusted.overlay.* refused, the others best effort, nothing outside', () =>
  expectSafe([file('x', 'x', { pax: { 'SCHILY.xattr.trusted.overlay.redirect': `/../../${X}`, 'SCHILY.xattr.trusted.k': 'v', 'SCHILY.xattr.user.k': 'v', 'SCHILY.xattr.security.capability': Buffer.from([1, 2, 3]) } })], {
    contained: (root, r) => {
      assert.ok(r.xattrsSkipped >= 1, 'trusted.overlay.redirect not applied');
      assert.equal(readFileSync(join(root, 'x'), 'utf8'), 'x');
    },
  }));
test('33 a symlink to outside is replaced, not written through, by a later file', () =>
  expectSafe([symlink('f', '../../outside/sentinel'), file('f', 'new\n')], {
    contained: (root) => {
      assert.ok(lstatSync(join(root, 'f')).isFile());
      assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'new\n');
    },
  }));
test('34 a directory entry replaces a symlink to outside', () =>
  expectSafe([symlink('d', '../../outside'), dir('d'), file(`d/${X}`, 'in\n')], {
    contained: (root) => {
      assert.ok(lstatSync(join(root, 'd')).isDirectory());
      assert.equal(readFileSync(join(root, 'd', X), 'utf8'), 'in\n');
    },
  }));
test('35 symlinks keep any target text but are never followed', () =>
  expectSafe([symlink('etc', '/etc'), symlink('up', '../../../..'), dir('etc'), symlink('up', '/')], {
    contained: (root) => {
      assert.ok(lstatSync(join(root, 'etc')).isDirectory(), 'the dir replaced the symlink');
      assert.equal(readlinkSync(join(root, 'up')), '/');
    },
  }));
test('36 hardlink to a file whose parent was later swapped for a symlink', () =>
  expectSafe([dir('d'), file('d/f'), symlink('d', '../../outside'), hardlink('l', 'd/sentinel')], refuse('is a symlink')));
test('37 invalid owner (a base-256 uid of 2^48)', () =>
  expectSafe([file('o', 'x', { patch: (b) => (b.fill(0, 108, 116), (b[108] = 0x80), (b[110] = 1)) })], refuse('invalid owner')));

// ---- well-formed archives ----

/** Everything GNU tar and we should agree on, per path; hardlinks as groups of paths sharing an inode. */
function treeOf(root: string): { entries: string[]; links: string[] } {
  const entries: string[] = [];
  const byIno = new Map<number, string[]>();
  const walk = (p: string, rel: string) => {
    for (const name of readdirSync(p).sort()) {
      const full = join(p, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(full);
      const type = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFIFO() ? 'p' : st.isCharacterDevice() ? 'c' : 'other';
      // Symlinks' and fifos' mtimes are included too; dirs' mtimes prove they were set after their contents.
      let extra = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)}`;
      if (type === 'f') extra += ' ' + createHash('sha256').update(readFileSync(full)).digest('hex').slice(0, 16);
      if (type === 'l') extra = `${st.uid}:${st.gid} -> ${readlinkSync(full)}`;
      if (type === 'c') extra += ` ${st.rdev}`;
      entries.push(`${r} ${type} ${extra}`);
      if (type === 'f' && st.nlink > 1) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), r]);
      if (type === 'd') walk(full, r);
    }
  };
  walk(root, '');
  return { entries, links: [...byIno.values()].map((g) => g.sort().join(' = ')).sort() };
}

test('a GNU tar rootfs extracts to the same tree GNU tar makes', async () => {
  const base = mkdtempSync('/tmp/kr-extract-gnu-');
  try {
    const src = join(base, 'src');
    const sh = (cmd: string) => execFileSync('sh', ['-c', cmd.replace(/\n\s*/g, ' ')], { cwd: src, stdio: ['ignore', 'ignore', 'inherit'] });
    mkdirSync(src);
    sh(`mkdir -p bin etc home/user/.cache usr/lib ro && printf 'hello\\n' > etc/hostname && head -c 300000 /dev/urandom > usr/lib/blob
        && cp /bin/true bin/ping && setcap cap_net_raw+ep bin/ping && cp /bin/true bin/su && chmod 4755 bin/su
        && chmod 2755 usr/lib && chmod 1777 home && ln usr/lib/blob usr/lib/blob.hard && ln usr/lib/blob bin/blob3
        && ln -s ../usr/lib lib64 && ln -s /etc/hostname etc/abs-link && ln -s dangling etc/dangle && mkfifo etc/fifo
        && printf 'mine\\n' > home/user/file && chown -R 1000:1000 home/user && chmod 600 home/user/file
        && printf 'ro\\n' > ro/f && chmod 555 ro && touch -h -d '2001-02-03 04:05:06' etc/* bin/* lib64 home/user/file
        && touch -d '1999-12-31 23:59:59' etc home/user ro usr/lib`);
    const tarPath = join(base, 'rootfs.tar');
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-cpf', tarPath, '-C', src, '.']);
    const gnu = join(base, 'gnu');
    const ours = join(base, 'ours');
    mkdirSync(gnu);
    mkdirSync(ours);
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-xpf', tarPath, '-C', gnu]);
    const r = await extractTar(createReadStream(tarPath), ours);
    assert.deepEqual(treeOf(ours), treeOf(gnu));
    assert.equal(r.hostileSkipped, 0);
    assert.ok(r.entries >= 20 && r.bytes > 300000, JSON.stringify(r));
    const caps = (root: string) => execFileSync('getcap', [join(root, 'bin/ping')], { encoding: 'utf8' }).replace(root, '');
    assert.equal(caps(ours), caps(gnu));
    assert.match(caps(ours), /cap_net_raw=ep/);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('later entries replace earlier ones; devices when allowed; a PAX global header makes no file', async () => {
  const box = sandbox();
  try {
    const r = await extractTar(Readable.from([tarOf([
      { name: 'first', data: 'x', globalPax: { comment: 'global' } },
      file('f', 'old'), file('f', 'new'), // file over file
      dir('d'), file('d', 'file now'), // file over an empty dir
      dir('full'), file('full/x'), file('full', 'over a full dir'), // file over a non-empty dir
      file('e', 'was a file'), dir('e', 0o700), file('e/inside', 'y'), // dir over file
      dir('k', 0o750), dir('k', 0o711), // dir over dir: the last metadata wins
      { name: 'dev/null', flag: '3', devmajor: 1, devminor: 3, mode: 0o666 },
      hardlink('f-again', 'f'),
    ])]), box.root, { allowDevices: true });
    const t = treeOf(box.root).entries.map((e) => e.replace(/ \d+:\d+ \d+/, ''));
    assert.deepEqual(readdirSync(box.root).sort(), ['d', 'dev', 'e', 'f', 'f-again', 'first', 'full', 'k']);
    assert.equal(readFileSync(join(box.root, 'f'), 'utf8'), 'new');
    assert.equal(readFileSync(join(box.root, 'd'), 'utf8'), 'file now');
    assert.equal(readFileSync(join(box.root, 'full'), 'utf8'), 'over a full dir');
    assert.equal(readFileSync(join(box.root, 'e/inside'), 'utf8'), 'y');
    assert.ok(t.includes('k d 711'), t.join('\n'));
    assert.ok(t.some((e) => e.startsWith('dev/null c 666')), t.join('\n'));
    assert.equal(lstatSync(join(box.root, 'f-again')).ino, lstatSync(join(box.root, 'f')).ino);
    assert.equal(r.devicesSkipped, 0);
  } finally {
    rmSync(box.parent, { recursive: true, force: true });
  }
});
