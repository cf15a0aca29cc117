import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from './parse.ts';
import { isKrError } from '../../util/errors.ts';
import type { Instruction } from './types.ts';

const parse = (text: string) => parseDockerfile(text).instructions;
const only = (text: string): Instruction => parse('FROM scratch\n' + text)[1];
function throwsLine(text: string, re: RegExp): void {
  assert.throws(() => parseDockerfile(text), (e: unknown) => isKrError(e, 'invalid') && re.test((e as Error).message) && !(e as Error).message.includes('\n'));
}

test('parser directives only at the very top', () => {
  const df = parseDockerfile('# syntax=docker/dockerfile:1\n#escape=`\n# check=skip=all\nFROM scratch\n');
  assert.deepEqual(df.directives, { syntax: 'docker/dockerfile:1', escape: '`', check: 'skip=all' });
  assert.equal(df.escape, '`');
  // After a comment, a directive-looking line is an ordinary comment.
  const late = parseDockerfile('# hello\n# escape=`\nFROM scratch\n');
  assert.equal(late.escape, '\\');
  assert.deepEqual(late.directives, {});
  // An unknown directive ends the directive section too.
  assert.equal(parseDockerfile('# unknowndirective=value\n# escape=`\nFROM scratch').escape, '\\');
  assert.equal(parseDockerfile('\n# escape=`\nFROM scratch').escape, '\\');
  throwsLine('# escape=x\nFROM scratch', /^Dockerfile:1: invalid escape/);
  throwsLine('# escape=`\n# escape=`\nFROM scratch', /^Dockerfile:2: only one escape/);
});

test('escape=backtick: Windows paths ending in a backslash are not continuations', () => {
  const win = '# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n';
  const [, copy, run] = parseDockerfile(win).instructions;
  assert.equal(copy.kind === 'COPY' && copy.dest, 'c:\\');
  assert.equal(run.kind === 'RUN' && run.command, 'dir c:\\');
  // With the default escape the same file joins the two lines, as Docker's reference shows.
  const joined = parseDockerfile(win.replace('# escape=`\n', '')).instructions;
  assert.equal(joined.length, 2);
  const j = joined[1];
  assert.deepEqual(j.kind === 'COPY' && [j.sources, j.dest], [[{ path: 'testfile.txt' }, { path: 'c:RUN' }, { path: 'dir' }], 'c:']);
  // And a backtick continues a line when it is the escape.
  const bt = parseDockerfile('# escape=`\nFROM scratch\nRUN echo a `\n  b').instructions[1];
  assert.equal(bt.kind === 'RUN' && bt.command, 'echo a   b');
});

test('continuations skip comment lines and empty lines, keep line numbers of the first line', () => {
  const ins = parse('FROM alpine\n\nRUN apk add \\\n# a comment inside\n\n    curl \\\n  \t # indented comment\n    jq\nUSER nobody\n');
  assert.equal(ins[1].line, 3);
  assert.equal(ins[1].kind === 'RUN' && ins[1].command, 'apk add     curl     jq');
  assert.equal(ins[2].line, 9);
  // A trailing escape followed by spaces still continues.
  assert.equal((only('RUN a \\  \n b') as { command: string }).command, 'a  b');
  // Comments start only at the line start: `#` later on is an argument.
  assert.equal((only('RUN echo # not a comment') as { command: string }).command, 'echo # not a comment');
});

test('instruction keywords are case-insensitive; FROM with platform and stage name', () => {
  const [from] = parse('from --platform=$BUILDPLATFORM golang:1.22 As Build');
  assert.deepEqual(from, { kind: 'FROM', line: 1, image: 'golang:1.22', name: 'build', platform: '$BUILDPLATFORM' });
  throwsLine('FROM a b', /^Dockerfile:1: FROM takes/);
  throwsLine('FROM a AS 1bad', /invalid stage name/);
});

test('RUN shell and exec forms, flags kept', () => {
  const shell = only('RUN --mount=type=cache,target=/root/.cache --network=none --security=insecure make all');
  assert.deepEqual(shell, {
    kind: 'RUN', line: 2, form: 'shell', command: 'make all', heredocs: [],
    flags: { mount: ['type=cache,target=/root/.cache'], network: 'none', security: 'insecure' },
  });
  const two = only('RUN --mount=type=secret,id=a --mount=type=ssh ["/bin/sh", "-c", "echo hi"]');
  assert.equal(two.kind === 'RUN' && two.form, 'exec');
  assert.deepEqual(two.kind === 'RUN' && two.command, ['/bin/sh', '-c', 'echo hi']);
  assert.deepEqual(two.kind === 'RUN' && two.flags.mount, ['type=secret,id=a', 'type=ssh']);
  // Not valid JSON: shell form, as docker does.
  const bad = only("RUN ['single', 'quotes']");
  assert.equal(bad.kind === 'RUN' && bad.form, 'shell');
  throwsLine('FROM scratch\nRUN --bogus=1 true', /^Dockerfile:2: unknown flag --bogus for RUN$/);
});

test('COPY and ADD: flags, JSON and space forms, several sources', () => {
  const c = only('COPY --from=build --chown=1000:1000 --chmod=0755 --link a b /dst/');
  assert.deepEqual(c, {
    kind: 'COPY', line: 2, sources: [{ path: 'a' }, { path: 'b' }], dest: '/dst/',
    flags: { from: 'build', chown: '1000:1000', chmod: '0755', link: true, exclude: [], parents: false },
  });
  const j = only('COPY ["with space.txt", "/d e/"]');
  assert.deepEqual(j.kind === 'COPY' && [j.sources, j.dest], [[{ path: 'with space.txt' }], '/d e/']);
  const a = only('ADD --keep-git-dir=true --checksum=sha256:abc https://x/y.tgz /z');
  assert.equal(a.kind, 'ADD');
  assert.equal(a.kind === 'ADD' && a.flags.keepGitDir, true);
  assert.equal(a.kind === 'ADD' && a.flags.checksum, 'sha256:abc');
  throwsLine('FROM s\nCOPY --checksum=x a b', /unknown flag --checksum for COPY/);
  throwsLine('FROM s\nCOPY onlyone', /^Dockerfile:2: COPY requires at least one source and a destination$/);
  throwsLine('FROM s\nCOPY --link=maybe a b', /expects true or false/);
});

test('ENV: pairs with quotes kept raw, legacy form takes the rest of the line', () => {
  assert.deepEqual(only('ENV A=1 B="v 2" C=a\\ b D=\'x $y\''), {
    kind: 'ENV', line: 2, pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '"v 2"' }, { key: 'C', value: 'a\\ b' }, { key: 'D', value: "'x $y'" }],
  });
  assert.deepEqual(only('ENV MY_NAME John Doe'), { kind: 'ENV', line: 2, pairs: [{ key: 'MY_NAME', value: 'John Doe' }] });
  throwsLine('FROM s\nENV ALONE', /^Dockerfile:2: ENV ALONE needs a value/);
  throwsLine('FROM s\nENV a=1 b', /can't find =/);
});

test('ARG, LABEL, MAINTAINER, WORKDIR, USER, STOPSIGNAL, EXPOSE, VOLUME', () => {
  const [arg] = parse('ARG A B=2 C="x y"\nFROM s');
  assert.deepEqual(arg, { kind: 'ARG', line: 1, args: [{ name: 'A' }, { name: 'B', default: '2' }, { name: 'C', default: '"x y"' }] });
  assert.deepEqual(only('LABEL "com.example.vendor"="ACME Inc" version=1.0').kind === 'LABEL' && (only('LABEL "com.example.vendor"="ACME Inc" version=1.0') as { pairs: unknown }).pairs,
    [{ key: '"com.example.vendor"', value: '"ACME Inc"' }, { key: 'version', value: '1.0' }]);
  assert.deepEqual(only('MAINTAINER Jane <jane@example.com>'), { kind: 'MAINTAINER', line: 2, maintainer: 'Jane <jane@example.com>' });
  assert.equal((only('WORKDIR /path with/space') as { path: string }).path, '/path with/space');
  assert.equal((only('USER app:app') as { user: string }).user, 'app:app');
  assert.equal((only('STOPSIGNAL SIGTERM') as { signal: string }).signal, 'SIGTERM');
  assert.deepEqual((only('EXPOSE 80/tcp 53/udp 8080') as { ports: string[] }).ports, ['80/tcp', '53/udp', '8080']);
  assert.deepEqual((only('VOLUME ["/data", "/logs"]') as { paths: string[] }).paths, ['/data', '/logs']);
  assert.deepEqual((only('VOLUME /a /b') as { paths: string[] }).paths, ['/a', '/b']);
});

test('ENTRYPOINT/CMD forms, SHELL needs JSON', () => {
  assert.deepEqual(only('ENTRYPOINT ["/bin/app", "--flag"]'), { kind: 'ENTRYPOINT', line: 2, form: 'exec', command: ['/bin/app', '--flag'] });
  assert.deepEqual(only('CMD echo $HOME'), { kind: 'CMD', line: 2, form: 'shell', command: 'echo $HOME' });
  assert.deepEqual(only('SHELL ["powershell", "-command"]'), { kind: 'SHELL', line: 2, shell: ['powershell', '-command'] });
  throwsLine('FROM s\n\nSHELL /bin/bash -c', /^Dockerfile:3: SHELL requires the arguments in JSON form/);
  throwsLine('FROM s\nSHELL ["a", 1]', /JSON form/);
});

test('HEALTHCHECK: NONE, options in nanoseconds, CMD forms', () => {
  assert.deepEqual(only('HEALTHCHECK NONE'), { kind: 'HEALTHCHECK', line: 2, test: ['NONE'] });
  assert.deepEqual(only('HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1'), {
    kind: 'HEALTHCHECK', line: 2, test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'],
    interval: 300e9, timeout: 3e9, startPeriod: 90e9, startInterval: 500e6, retries: 3,
  });
  assert.deepEqual((only('HEALTHCHECK --interval=1.5h CMD ["/bin/check", "x"]') as { test: string[]; interval: number }), {
    kind: 'HEALTHCHECK', line: 2, test: ['CMD', '/bin/check', 'x'], interval: 1.5 * 3600e9,
  });
  throwsLine('FROM s\nHEALTHCHECK --interval=5 CMD x', /invalid duration/);
  throwsLine('FROM s\nHEALTHCHECK --timeout=10us CMD x', /less than 1ms/);
  throwsLine('FROM s\nHEALTHCHECK CMD', /requires a command/);
  throwsLine('FROM s\nHEALTHCHECK --retries=3 NONE', /NONE takes no other/);
});

test('ONBUILD keeps the inner instruction', () => {
  const o = only('ONBUILD COPY . /app/src');
  assert.equal(o.kind, 'ONBUILD');
  assert.equal(o.kind === 'ONBUILD' && o.text, 'COPY . /app/src');
  assert.deepEqual(o.kind === 'ONBUILD' && o.instruction.kind === 'COPY' && o.instruction.dest, '/app/src');
  throwsLine('FROM s\nONBUILD ONBUILD RUN x', /not allowed as an ONBUILD trigger/);
  throwsLine('FROM s\nONBUILD FROM x', /not allowed/);
});

test('heredocs: RUN script, chomp, quoted delimiters, several per line, COPY creates files', () => {
  const ins = parse([
    'FROM alpine',
    'RUN <<EOF',
    'echo $HOME',
    '  # not a comment here',
    'EOF',
    'RUN <<-"EOT" sh',
    '\techo "$X"',
    '\tEOT',
    "RUN <<A cat > /a && <<'B' cat > /b",
    'first $V',
    'A',
    'second $V',
    'B',
    'COPY --chmod=644 <<conf <<-other /etc/',
    'k=v',
    'conf',
    '\tx',
    '\tother',
    'USER nobody',
  ].join('\n'));
  const r1 = ins[1], r2 = ins[2], r3 = ins[3], c = ins[4];
  assert.deepEqual(r1.kind === 'RUN' && [r1.command, r1.heredocs], ['<<EOF', [{ name: 'EOF', content: 'echo $HOME\n  # not a comment here\n', expand: true, chomp: false }]]);
  assert.deepEqual(r2.kind === 'RUN' && r2.heredocs, [{ name: 'EOT', content: 'echo "$X"\n', expand: false, chomp: true }]);
  assert.deepEqual(r3.kind === 'RUN' && r3.heredocs.map((h) => [h.name, h.content, h.expand]), [['A', 'first $V\n', true], ['B', 'second $V\n', false]]);
  assert.deepEqual(c.kind === 'COPY' && c.sources, [
    { heredoc: { name: 'conf', content: 'k=v\n', expand: true, chomp: false } },
    { heredoc: { name: 'other', content: 'x\n', expand: true, chomp: true } },
  ]);
  assert.equal(c.kind === 'COPY' && c.dest, '/etc/');
  assert.equal(ins[5].line, 19);
  throwsLine('FROM s\nRUN <<EOF\necho', /^Dockerfile:2: unterminated heredoc <<EOF$/);
  // `<<<` is a here-string, and a quoted `<<X` is just an argument.
  assert.deepEqual((only('RUN cat <<<"x" "<<Y"') as { heredocs: unknown[] }).heredocs, []);
});

test('structural errors name file and line', () => {
  throwsLine('FORM alpine', /^Dockerfile:1: unknown instruction FORM$/);
  throwsLine('# c\nRUN true\nFROM x', /^Dockerfile:2: RUN before any FROM/);
  throwsLine('ARG X=1\n', /^Dockerfile:1: no FROM instruction$/);
  throwsLine('\n# only a comment\n', /^Dockerfile: file with no instructions$/);
  assert.throws(() => parseDockerfile('FROM a\nFORM b', { file: 'app/Dockerfile.dev' }), /^KrError: app\/Dockerfile.dev:2: unknown instruction FORM$/);
});
