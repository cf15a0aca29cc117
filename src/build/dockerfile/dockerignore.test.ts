import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, symlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { matcher, parseDockerignore, walkContext, walkContextEntries } from './dockerignore.ts';

const ign = (patterns: string[], p: string, isDir = false) => matcher(patterns).ignored(p, isDir);

test('parsing: comments, blank lines, trimming, cleaning, leading slash', () => {
  const text = '# comment\n\n  *.log  \n/build/\n!  keep.log\n./a/../b//c\n  # not a comment when indented? docker: only at column 0\n';
  assert.deepEqual(parseDockerignore(text), ['*.log', 'build', '!keep.log', 'b/c', '# not a comment when indented? docker: only at column 0']);
});

test('patterns are relative to the root, not "anywhere" like gitignore', () => {
  assert.equal(ign(['*.md'], 'README.md'), true);
  assert.equal(ign(['*.md'], 'docs/guide.md'), false);
  assert.equal(ign(['/foo/bar'], 'foo/bar'), true);
  assert.equal(ign(['foo/bar'], 'x/foo/bar'), false);
  assert.equal(ign(['*/temp*'], 'somedir/temporary.txt'), true);
  assert.equal(ign(['*/*/temp*'], 'a/b/temp'), true);
  assert.equal(ign(['*/*/temp*'], 'a/temp'), false);
});

test('a matching directory excludes everything below it', () => {
  assert.equal(ign(['node_modules'], 'node_modules', true), true);
  assert.equal(ign(['node_modules'], 'node_modules/a/b.js'), true);
  assert.equal(ign(['node_modules'], 'src/node_modules/a.js'), false);
  assert.equal(ign(['**/node_modules'], 'src/node_modules/a.js'), true);
});

test('wildcards: **, *, ?, [...], escapes', () => {
  assert.equal(ign(['**/*.go'], 'main.go'), true);
  assert.equal(ign(['**/*.go'], 'a/b/c/x.go'), true);
  assert.equal(ign(['a/**/z'], 'a/z'), true);
  assert.equal(ign(['a/**/z'], 'a/b/c/z'), true);
  assert.equal(ign(['a/**'], 'a/q/r'), true);
  assert.equal(ign(['*'], 'a/b'), true); // matches the parent `a`
  assert.equal(ign(['file?.txt'], 'file1.txt'), true);
  assert.equal(ign(['file?.txt'], 'file10.txt'), false);
  assert.equal(ign(['file[0-9].txt'], 'file7.txt'), true);
  assert.equal(ign(['file[^0-9].txt'], 'file7.txt'), false);
  assert.equal(ign(['file[^0-9].txt'], 'filex.txt'), true);
  assert.equal(ign(['\\*.txt'], '*.txt'), true);
  assert.equal(ign(['\\*.txt'], 'a.txt'), false);
  assert.equal(ign(['a.txt'], 'aXtxt'), false); // `.` is literal
});

test('exceptions: the last matching pattern wins', () => {
  const p = ['**/*.md', '!README.md'];
  assert.equal(ign(p, 'README.md'), false);
  assert.equal(ign(p, 'docs/README.md'), true); // `!README.md` is anchored at the root too
  assert.equal(ign(p, 'CHANGES.md'), true);
  assert.equal(ign(['*.md', '!README*.md', 'README-secret.md'], 'README-secret.md'), true);
  assert.equal(ign(['*.md', '!README*.md', 'README-secret.md'], 'README-public.md'), false);
  assert.equal(ign(['docs', '!docs/keep.txt'], 'docs/keep.txt'), false);
  assert.equal(ign(['docs', '!docs/keep.txt'], 'docs/drop.txt'), true);
  assert.equal(ign(['!x'], 'x'), false);
});

test('mayIncludeBelow decides whether an excluded directory must be entered', () => {
  assert.equal(matcher(['docs']).mayIncludeBelow('docs'), false);
  assert.equal(matcher(['docs', '!docs/keep.txt']).mayIncludeBelow('docs'), true);
  assert.equal(matcher(['docs', '!other/keep.txt']).mayIncludeBelow('docs'), false);
  assert.equal(matcher(['*', '!**/*.go']).mayIncludeBelow('deep/er'), true);
  assert.equal(matcher(['*', '!src/*/main.go']).mayIncludeBelow('src/cmd'), true);
  assert.equal(matcher(['*', '!src/*/main.go']).mayIncludeBelow('lib'), false);
});

test('walkContext: sorted included files, excluded dirs entered only when needed', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'kr-dockerignore-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const files = ['README.md', 'CHANGES.md', 'main.go', 'docs/README.md', 'docs/guide.txt', 'node_modules/x/index.js',
    'node_modules/x/keep.txt', 'src/a.ts', 'src/b.test.ts', '.git/HEAD'];
  for (const f of files) {
    await mkdir(path.join(root, path.dirname(f)), { recursive: true });
    await writeFile(path.join(root, f), f);
  }
  await mkdir(path.join(root, 'empty'));
  await symlink('src/a.ts', path.join(root, 'link'));
  const patterns = parseDockerignore('.git\n**/*.md\n!README.md\nnode_modules\n!node_modules/x/keep.txt\nsrc/*.test.ts\n');
  assert.deepEqual(await walkContext(root, patterns), [
    'README.md', 'docs/guide.txt', 'link', 'main.go', 'node_modules/x/keep.txt', 'src/a.ts',
  ]);
  const entries = await walkContextEntries(root, patterns);
  assert.deepEqual(entries.filter((e) => e.type === 'dir').map((e) => e.path), ['docs', 'empty', 'src']);
  assert.equal(entries.find((e) => e.path === 'link')?.type, 'symlink');
  assert.deepEqual(await walkContext(root, []), [...files, 'link'].sort());
});
