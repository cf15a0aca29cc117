// bali: signed single-file images. Thin: parse arguments, call the library, print results.
import { parse, result, runCli, say, UsageError, withExitCode } from './common.ts';
import { progressBars } from './progress-bars.ts';
import { createKey, loadKey, loadOrCreateKey, readTrustedIdentities } from '../bali/keys.ts';

const usage = `bali <command> [options]

commands:
  keygen                              create the signing key (never overwrites one)
  id                                  print the signing identity (creates the key if missing)
  pack SOURCE OUT.tar.gz [--no-sign]  flatten an image and sign it; SOURCE is a registry
        [--platform OS/ARCH] [--insecure-registry]   reference, a docker archive or an OCI layout
  sign IN.tar[.gz] OUT.tar.gz         sign an existing rootfs tarball as it is
  verify FILE (--identity ID | --identity-file FILE)...   check a signature: "OK <signer>"
  inspect FILE [--identity ID]... [--json]                 signer, digests, size, image config
  build OUT.tar.gz [-f Dockerfile] [--build-arg K=V]... [--target STAGE] [--no-sign] [CONTEXT]
                                      build a Dockerfile without a docker daemon (see bali build --help)
  run [options] SOURCE [-- CMD ARGS...]   verify, then become the image's service (see bali run --help)`;

const buildUsage = `bali build OUT.tar.gz [options] [CONTEXT]

Builds the Dockerfile in CONTEXT (default .) into a signed bali file, without a docker daemon.
Steps are cached (~/.cache/kraud/build, or $KRAUD_BUILD_CACHE): an unchanged rebuild reuses them.

  -f, --file FILE          the Dockerfile (default CONTEXT/Dockerfile)
  --build-arg K=V          set a build argument (repeatable)
  --target STAGE           build this stage instead of the last
  --no-sign                write an unsigned file
  --identity ID, --identity-file FILE   also trust these signers for FROM bali files
                           (files signed by your own key are always accepted)
  --insecure-skip-verify   accept unsigned or untrusted bali files in FROM`;

const runUsage = `bali run [options] SOURCE [-- CMD ARGS...]

SOURCE is a path, file:// or http(s):// URL of a bali file. The process becomes the service
(execve): same PID, its exit status is yours. Only the mount namespace is new.

  --identity ID            trust this signer (repeatable)
  --identity-file FILE     trust the identities in FILE (one a line)
  --insecure-skip-verify   run unsigned or untrusted files (with a warning)
  -e, --env K=V | K        set a variable, or copy K from this environment
  -v, --volume SRC:DST[:ro]  bind a host directory or file
  -w, --workdir DIR        working directory inside the image
  -u, --user USER[:GROUP]  user (name or id) from the image's /etc/passwd
  --entrypoint CMD         replace the image's entrypoint
  --mem SIZE               memory limit (e.g. 512m) in a cgroup under the caller's own`;

const commands: Record<string, (args: string[]) => Promise<void>> = {
  async keygen(args) {
    parse(args, {}, 'bali keygen');
    const { key, file } = createKey();
    say(`bali: wrote a new signing key to ${file}`);
    result(key.identity);
  },

  async id(args) {
    parse(args, {}, 'bali id');
    result(loadOrCreateKey().identity);
  },

  async pack(args) {
    const u = 'bali pack SOURCE OUT.tar.gz [--no-sign] [--platform OS/ARCH] [--insecure-registry]';
    const { values, positionals } = parse(args, { 'no-sign': { type: 'boolean' }, platform: { type: 'string' }, 'insecure-registry': { type: 'boolean' } }, u);
    if (positionals.length !== 2) throw new UsageError(`pack takes SOURCE and OUT\nusage: ${u}`);
    const key = values['no-sign'] ? null : loadKey();
    const { packSource } = await import('../bali/pack.ts'); // loaded on demand: keeps `bali id` quick
    const written = await packSource(positionals[0], positionals[1], {
      key,
      platform: values.platform,
      insecure: values['insecure-registry'] === true,
      progress: progressBars(),
    });
    say(`bali: packed ${positionals[0]} → ${written.path} (${written.fileBytes} bytes, ${written.signer ? `signed by ${written.signer}` : 'unsigned'})`);
    result(written.fileDigest);
  },

  async sign(args) {
    const u = 'bali sign IN.tar[.gz] OUT.tar.gz';
    const { positionals } = parse(args, {}, u);
    if (positionals.length !== 2) throw new UsageError(`sign takes IN and OUT\nusage: ${u}`);
    const { signTarFile } = await import('../bali/sign-tar.ts');
    const written = await signTarFile(positionals[0], positionals[1], loadKey());
    say(`bali: signed ${positionals[0]} → ${written.path} as ${written.signer}`);
    result(written.fileDigest);
  },

  async verify(args) {
    const u = 'bali verify FILE --identity ID [--identity ID]... | --identity-file FILE';
    const { values, positionals } = parse(args, { identity: { type: 'string', multiple: true }, 'identity-file': { type: 'string', multiple: true } }, u);
    if (positionals.length !== 1) throw new UsageError(`verify takes one FILE\nusage: ${u}`);
    const trusted = readTrustedIdentities(values.identity ?? [], values['identity-file'] ?? []);
    if (trusted.length === 0) throw new UsageError(`verify needs --identity or --identity-file\nusage: ${u}`);
    const { verifyFile } = await import('../bali/verify.ts');
    const verdict = await verifyFile(positionals[0], { trusted });
    result(`OK ${verdict.signer}`);
  },

  async build(args) {
    const { values, positionals } = parse(
      args,
      {
        file: { type: 'string', short: 'f' },
        'build-arg': { type: 'string', multiple: true },
        target: { type: 'string' },
        'no-sign': { type: 'boolean' },
        identity: { type: 'string', multiple: true },
        'identity-file': { type: 'string', multiple: true },
        'insecure-skip-verify': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      buildUsage,
    );
    if (values.help) return result(buildUsage);
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError(`build takes OUT and an optional CONTEXT\n${buildUsage}`);
    const buildArgs: Record<string, string> = {};
    for (const a of values['build-arg'] ?? []) {
      const eq = a.indexOf('=');
      if (eq > 0) buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
      else if (process.env[a] !== undefined) buildArgs[a] = process.env[a]!; // docker: --build-arg K takes K from the environment
    }
    const { enterBuildNamespace, runBuild } = await import('../bali/build-command.ts');
    if (!process.env.BALI_BUILD_NS) enterBuildNamespace(args);
    const key = values['no-sign'] ? null : loadOrCreateKey();
    const written = await runBuild({
      out: positionals[0],
      context: positionals[1] ?? '.',
      dockerfile: values.file,
      buildArgs,
      target: values.target,
      key,
      trusted: [...(key ? [key.publicKey] : []), ...readTrustedIdentities(values.identity ?? [], values['identity-file'] ?? [])],
      insecure: values['insecure-skip-verify'] === true,
      log: say,
      output: (chunk) => process.stderr.write(chunk),
      progress: progressBars(),
    });
    result(written.fileDigest);
  },

  async run(args) {
    const dashdash = args.indexOf('--');
    const before = dashdash >= 0 ? args.slice(0, dashdash) : args;
    const { values, positionals } = parse(
      before,
      {
        identity: { type: 'string', multiple: true },
        'identity-file': { type: 'string', multiple: true },
        'insecure-skip-verify': { type: 'boolean' },
        env: { type: 'string', short: 'e', multiple: true },
        volume: { type: 'string', short: 'v', multiple: true },
        workdir: { type: 'string', short: 'w' },
        user: { type: 'string', short: 'u' },
        entrypoint: { type: 'string' },
        mem: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      runUsage,
    );
    if (values.help) return result(runUsage);
    if (positionals.length < 1) throw new UsageError(`run needs a SOURCE\n${runUsage}`);
    const { parseEnvOption, parseSize, parseVolume } = await import('../bali/run/options.ts');
    for (const e of values.env ?? []) parseEnvOption(e);
    const opts = {
      source: positionals[0],
      identities: values.identity ?? [],
      identityFiles: values['identity-file'] ?? [],
      insecure: values['insecure-skip-verify'] === true,
      env: values.env ?? [],
      volumes: (values.volume ?? []).map(parseVolume),
      workdir: values.workdir,
      user: values.user,
      entrypoint: values.entrypoint,
      memoryBytes: values.mem !== undefined ? parseSize(values.mem) : undefined,
      command: [...positionals.slice(1), ...(dashdash >= 0 ? args.slice(dashdash + 1) : [])],
    };
    const run = await import('../bali/run/run.ts');
    try {
      const timing = process.env.BALI_TIMINGS ? (phase: string, ms: number) => say(`bali-timing ${phase} ${ms.toFixed(1)}`) : undefined;
      if (run.isStage2()) await run.finishRun(opts, progressBars(), say, timing);
      else run.startRun(opts, args);
    } catch (err) {
      throw withExitCode(err, 125); // a failure of bali itself, told apart from the service's exit codes
    }
  },

  async inspect(args) {
    const u = 'bali inspect FILE [--identity ID]... [--identity-file FILE]... [--json]';
    const { values, positionals } = parse(args, { identity: { type: 'string', multiple: true }, 'identity-file': { type: 'string', multiple: true }, json: { type: 'boolean' } }, u);
    if (positionals.length !== 1) throw new UsageError(`inspect takes one FILE\nusage: ${u}`);
    const trusted = readTrustedIdentities(values.identity ?? [], values['identity-file'] ?? []);
    const { inspectFile } = await import('../bali/inspect.ts');
    const info = await inspectFile(positionals[0], trusted);
    if (values.json) {
      result(JSON.stringify(info, null, 2));
      return;
    }
    result(`file:     ${info.file}`);
    result(`size:     ${info.fileBytes} bytes (tar: ${info.tarBytes} bytes)`);
    result(`digest:   ${info.fileDigest}`);
    result(`signed:   ${info.tarDigest}`);
    result(`signer:   ${info.signerSummary}`);
    result(`config:   ${info.config ? JSON.stringify(info.config, null, 2).replace(/\n/g, '\n          ') : '(none: not made by bali pack/build)'}`);
  },
};

await runCli('bali', async () => {
  const [name, ...rest] = process.argv.slice(2);
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    result(usage);
    return;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command "${name}"\n${usage}`);
  await command(rest);
});
