// bali: signed single-file images. Thin: parse arguments, call the library, print results.
import { parse, result, runCli, say, UsageError } from './common.ts';
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
  inspect FILE [--identity ID]... [--json]                 signer, digests, size, image config`;

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
