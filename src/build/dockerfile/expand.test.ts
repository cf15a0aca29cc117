import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandWord, expandInstruction, stagesOf, StageScope, mountFrom } from './expand.ts';
import { parseDockerfile } from './parse.ts';
import { splitWords } from './words.ts';
import { isKrError } from '../../util/errors.ts';
import type { Instruction } from './types.ts';

const vars = { A: 'a', EMPTY: '', PATHV: '/usr/local/bin:/usr/bin', FILE: 'archive.tar.gz' };
const x = (w: string, escape: '\\' | '`' = '\\') => expandWord(w, vars, escape);

test('plain references and braces', () => {
  assert.equal(x('$A'), 'a');
  assert.equal(x('${A}bc'), 'abc');
  assert.equal(x('$Abc'), ''); // the name is Abc, which is unset
  assert.equal(x('pre-$A-post'), 'pre-a-post');
  assert.equal(x('$UNSET'), '');
  assert.equal(x('cost: $'), 'cost: $');
  assert.equal(x('$ A'), '$ A');
});

test('default, alternative and error modifiers: unset vs empty', () => {
  assert.equal(x('${UNSET:-d}'), 'd');
  assert.equal(x('${EMPTY:-d}'), 'd');
  assert.equal(x('${EMPTY-d}'), ''); // set but empty: no default without the colon
  assert.equal(x('${UNSET-d}'), 'd');
  assert.equal(x('${A:-d}'), 'a');
  assert.equal(x('${A:+alt}'), 'alt');
  assert.equal(x('${EMPTY:+alt}'), '');
  assert.equal(x('${EMPTY+alt}'), 'alt');
  assert.equal(x('${UNSET+alt}'), '');
  assert.equal(x('${A:?boom}'), 'a');
  assert.throws(() => x('${EMPTY:?must be set}'), (e: unknown) => isKrError(e, 'invalid') && /EMPTY: must be set/.test((e as Error).message));
  assert.throws(() => x('${UNSET?}'), /UNSET: is not set/);
  assert.equal(x('${EMPTY?}'), '');
});

test('nesting: ${X:-${Y}} and quoted defaults', () => {
  assert.equal(x('${UNSET:-${A}}'), 'a');
  assert.equal(x('${UNSET:-${ALSO:-deep $A}}'), 'deep a');
  assert.equal(x('${UNSET:-"quoted }"}'), 'quoted }');
  assert.throws(() => x('${A'), /missing '}'/);
  assert.throws(() => x('${}'), /bad substitution/);
  assert.throws(() => x('${A:=x}'), /bad substitution/);
});

test('prefix and suffix patterns', () => {
  assert.equal(x('${FILE%.gz}'), 'archive.tar');
  assert.equal(x('${FILE%.*}'), 'archive.tar');
  assert.equal(x('${FILE%%.*}'), 'archive');
  assert.equal(x('${FILE#*.}'), 'tar.gz');
  assert.equal(x('${FILE##*.}'), 'gz');
  assert.equal(x('${PATHV#/usr/}'), 'local/bin:/usr/bin');
  assert.equal(x('${FILE#nomatch}'), 'archive.tar.gz');
});

test('quotes and escapes', () => {
  assert.equal(x("'$A'"), '$A');
  assert.equal(x('"$A b"'), 'a b');
  assert.equal(x('\\$A'), '$A');
  assert.equal(x('"\\$A"'), '$A');
  assert.equal(x('"a\\nb"'), 'a\\nb'); // inside double quotes other escapes stay
  assert.equal(x('a\\ b'), 'a b');
  assert.equal(x('`$A', '`'), '$A'); // backtick escape
  assert.equal(x('c:\\dir\\$A', '`'), 'c:\\dir\\a'); // backslash is ordinary under escape=`
  assert.throws(() => x('"open'), /unterminated double quote/);
  assert.throws(() => x("'open"), /unterminated single quote/);
});

test('word splitting keeps quoted whitespace together', () => {
  assert.deepEqual(splitWords('a=1 b="x y" c=\'p q\' d=e\\ f', '\\'), ['a=1', 'b="x y"', "c='p q'", 'd=e\\ f']);
  assert.deepEqual(splitWords('  lead   trail  ', '\\'), ['lead', 'trail']);
  assert.deepEqual(splitWords('a=`"b c', '`'), ['a=`"b', 'c']);
});

const inst = (text: string): Instruction => parseDockerfile('FROM s\n' + text).instructions[1];

test('expandInstruction: only the instructions Docker expands', () => {
  const e = (t: string) => expandInstruction(inst(t), { A: 'a', P: '8080', D: '/data' });
  assert.deepEqual(e('COPY --chown=$A:$A ${A}.txt "$D/x y"'), {
    kind: 'COPY', line: 2, sources: [{ path: 'a.txt' }], dest: '/data/x y',
    flags: { chown: 'a:a', link: false, exclude: [], parents: false },
  });
  assert.deepEqual((e('EXPOSE $P/tcp') as { ports: string[] }).ports, ['8080/tcp']);
  assert.deepEqual((e('VOLUME ["$D"]') as { paths: string[] }).paths, ['/data']);
  assert.equal((e('WORKDIR $D/app') as { path: string }).path, '/data/app');
  assert.equal((e('USER ${A}:${G:-root}') as { user: string }).user, 'a:root');
  assert.deepEqual((e('LABEL "k $A"="v $A" q=\'$A\'') as { pairs: unknown }).pairs, [{ key: 'k a', value: 'v a' }, { key: 'q', value: '$A' }]);
  // The shell expands these, not the builder.
  assert.equal((e('RUN echo $A') as { command: string }).command, 'echo $A');
  assert.equal((e('CMD echo $A') as { command: string }).command, 'echo $A');
  assert.deepEqual(e('MAINTAINER Jo $A'), { kind: 'LABEL', line: 2, pairs: [{ key: 'maintainer', value: 'Jo $A' }] });
  assert.throws(() => e('WORKDIR ${X:?needs X}'), /^KrError: line 2: X: needs X$/);
});

test('heredoc content: expanded for an unquoted delimiter only', () => {
  const df = parseDockerfile('FROM s\nCOPY <<A <<"B" /d/\nhome=$H "q" \\$H\nA\nhome=$H\nB\n');
  const c = expandInstruction(df.instructions[1], { H: '/root' });
  assert.deepEqual(c.kind === 'COPY' && c.sources.map((s) => ('heredoc' in s ? s.heredoc.content : '')), ['home=/root "q" $H\n', 'home=$H\n']);
});

test('ENV a=1 b=$a: b sees the value from before the instruction', () => {
  const df = parseDockerfile('FROM s\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n');
  const scope = new StageScope({});
  const steps = df.instructions.slice(1).map((i) => scope.step(i));
  assert.equal(steps[1].env.get('def'), 'hello');
  assert.equal(steps[2].env.get('ghi'), 'bye');
  assert.deepEqual([...scope.env], [['abc', 'bye'], ['def', 'hello'], ['ghi', 'bye']]);
});

test('StageScope: ARG defaults, build args, ENV overrides ARG, base env', () => {
  const df = parseDockerfile('FROM s\nARG A=1 B=$A\nARG C\nENV A=env\nARG A=2\nWORKDIR /$A/$B/${C:-none}/$PATH');
  const scope = new StageScope({ buildArgs: { B: 'fromcli' }, baseEnv: { PATH: '/bin' } });
  const steps = df.instructions.slice(1).map((i) => scope.step(i));
  assert.deepEqual([...steps[0].args], [['A', '1'], ['B', 'fromcli']]);
  assert.equal(steps[1].args.has('C'), false); // declared without a value: unset
  assert.equal((steps[4].instruction as { path: string }).path, '/env/fromcli/none//bin');
  assert.equal(steps[4].env.has('B'), false); // ARGs are not recorded in the image ENV
});

test('stagesOf: global ARG in FROM, re-declared inside a stage to be visible', () => {
  const df = parseDockerfile('ARG VERSION=3.19\nARG REG=docker.io\nFROM $REG/alpine:${VERSION} AS base\nRUN echo $VERSION\nARG VERSION\nWORKDIR /v$VERSION\n');
  const plan = stagesOf(df);
  assert.deepEqual(plan.stages[0].base, { image: 'docker.io/alpine:3.19' });
  assert.equal(plan.globalArgs.get('VERSION'), '3.19');
  const scope = new StageScope({ globalArgs: plan.globalArgs, escape: plan.escape });
  const steps = plan.stages[0].instructions.map((i) => scope.step(i));
  assert.equal(steps[0].args.has('VERSION'), false); // not visible before re-declaration
  assert.equal((steps[2].instruction as { path: string }).path, '/v3.19');
  const over = stagesOf(df, { buildArgs: { VERSION: '3.20', NOPE: 'x' } });
  assert.deepEqual(over.stages[0].base, { image: 'docker.io/alpine:3.20' });
  assert.deepEqual(over.unusedBuildArgs, ['NOPE']);
});

const multi = [
  'FROM alpine AS deps',
  'RUN echo deps',
  'FROM golang AS build',
  'COPY --from=deps /x /x',
  'FROM build AS test',
  'RUN --mount=type=bind,from=1,target=/src go test',
  'FROM nginx AS unused',
  'FROM scratch AS final',
  'ARG TOOLS=build',
  'COPY --from=${TOOLS} /bin/app /app',
  'COPY --from=busybox:1.36 /bin/sh /sh',
].join('\n');

test('stagesOf: dependencies, target resolution, unused stages skipped', () => {
  const plan = stagesOf(parseDockerfile(multi));
  assert.deepEqual(plan.stages.map((s) => s.name), ['deps', 'build', 'test', 'unused', 'final']);
  assert.equal(plan.target, 4);
  assert.deepEqual(plan.stages[4].dependsOn, [1]);
  assert.deepEqual(plan.stages[4].images, ['busybox:1.36']);
  assert.deepEqual(plan.needed, [0, 1, 4]);
  assert.deepEqual(plan.stages[2].base, { stage: 1 });
  const t = stagesOf(parseDockerfile(multi), { target: 'TEST' });
  assert.equal(t.target, 2);
  assert.deepEqual(t.needed, [0, 1, 2]);
  assert.deepEqual(stagesOf(parseDockerfile(multi), { target: 'deps' }).needed, [0]);
  assert.deepEqual(stagesOf(parseDockerfile(multi), { buildArgs: { TOOLS: 'deps' } }).needed, [0, 4]);
  assert.throws(() => stagesOf(parseDockerfile(multi), { target: 'prod' }),
    /^KrError: Dockerfile: target stage "prod" not found; stages: deps, build, test, unused, final$/);
});

test('stagesOf: bad references and names', () => {
  assert.throws(() => stagesOf(parseDockerfile('FROM a\nCOPY --from=3 /x /y')), /^KrError: Dockerfile:2: --from=3 does not name an earlier stage/);
  assert.throws(() => stagesOf(parseDockerfile('FROM a AS x\nFROM b AS X')), /Dockerfile:2: duplicate stage name x/);
  assert.throws(() => stagesOf(parseDockerfile('ARG IMG\nFROM $IMG')), /Dockerfile:2: FROM \$IMG expands to an empty image name/);
  assert.equal(mountFrom('type=cache,target=/x'), undefined);
  assert.equal(mountFrom('type=bind,From=builder,source=/o'), 'builder');
});
