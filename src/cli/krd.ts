// krd: the Docker Engine API daemon, in the foreground. Thin: parse flags, start, log, stop on a signal.
import { parse, result, runCli, say, UsageError } from './common.ts';
import { defaultPaths, defaultRuntime, startDaemon, KRD_VERSION } from '../engine/daemon.ts';
import { chooseAccel } from '../vm/qemu.ts';
import { makeCerts } from '../engine/certs.ts';
import { readTrustedIdentities } from '../bali/keys.ts';
import type { RuntimeName } from '../engine/context.ts';

const defaults = defaultPaths();
const usage = `krd [options]            serve the Docker Engine API (foreground)
krd certs DIR            make a local CA, server and client certificates for TCP with mutual TLS

options (dockerd's names):
  -H, --host ADDR          unix:///path or tcp://HOST:PORT (repeatable); default unix://${defaults.socket}
  --data-root DIR          all state (database, images); default ${defaults.dataRoot}
  --runtime ns|vm          what runs containers: ns (namespaces) or vm (a microVM per pod);
                           default vm where KVM is usable, else ns
  --tlsverify              require client certificates signed by --tlscacert (needed for tcp://)
  --tlscacert FILE --tlscert FILE --tlskey FILE   CA, server certificate and key (krd certs DIR makes them)
  --trusted-identity ID    bali signer whose files load without a warning (repeatable)
  --insecure-registry HOST registry to reach over plain HTTP (loopback always is; repeatable)
  --bip CIDR               the default bridge network's address, e.g. 172.17.0.1/16 (when krd first makes it;
                           otherwise the first free /16 of 172.17-31)

Connect with: DOCKER_HOST=unix://${defaults.socket} docker version`;

async function certs(args: string[]): Promise<void> {
  const { positionals } = parse(args, {}, 'krd certs DIR');
  if (positionals.length !== 1) throw new UsageError(`expected one directory\nusage: krd certs DIR`);
  const dir = positionals[0];
  const f = makeCerts(dir);
  say(`krd: wrote ${f.ca}, ${f.serverCert}, ${f.serverKey}, ${f.clientCert}, ${f.clientKey}`);
  result(`krd --tlsverify --tlscacert ${f.ca} --tlscert ${f.serverCert} --tlskey ${f.serverKey} -H tcp://127.0.0.1:2376`);
  result(`docker --tlsverify --tlscacert ${f.ca} --tlscert ${f.clientCert} --tlskey ${f.clientKey} -H tcp://127.0.0.1:2376 version`);
}

async function serve(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    {
      host: { type: 'string', short: 'H', multiple: true },
      'data-root': { type: 'string' },
      runtime: { type: 'string' },
      tlsverify: { type: 'boolean' },
      tlscacert: { type: 'string' },
      tlscert: { type: 'string' },
      tlskey: { type: 'string' },
      'trusted-identity': { type: 'string', multiple: true },
      'insecure-registry': { type: 'string', multiple: true },
      bip: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
    usage,
  );
  if (values.help) return result(usage);
  if (values.version) return result(`krd ${KRD_VERSION}`);
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}\nusage: ${usage}`);
  const dflt = defaultRuntime();
  const runtime = values.runtime ?? dflt.name;
  if (runtime !== 'ns' && runtime !== 'vm') throw new UsageError(`--runtime must be ns or vm, not ${runtime}`);
  const tlsParts = [values.tlscacert, values.tlscert, values.tlskey];
  let tls;
  if (values.tlsverify || tlsParts.some(Boolean)) {
    if (!values.tlsverify || !tlsParts.every(Boolean)) throw new UsageError('TLS needs all of --tlsverify --tlscacert --tlscert --tlskey (krd serves TCP with mutual TLS only)');
    tls = { ca: values.tlscacert!, cert: values.tlscert!, key: values.tlskey! };
  }
  const daemon = await startDaemon({
    hosts: values.host,
    dataRoot: values['data-root'],
    runtime: runtime as RuntimeName,
    tls,
    trusted: readTrustedIdentities(values['trusted-identity'] ?? [], []),
    insecureRegistries: values['insecure-registry'] ?? [],
    bip: values.bip,
  });
  const why = values.runtime ? 'asked for' : `default: ${dflt.why}`;
  const accel = runtime === 'vm' ? (process.env.KRAUD_VM_PODS === 'process' ? ', pods as host processes (KRAUD_VM_PODS)' : `, accel ${chooseAccel()}`) : '';
  say(`krd ${KRD_VERSION} (pid ${process.pid}): runtime ${daemon.context.runtime} (${why}${accel}), data root ${daemon.context.dataRoot}`);
  for (const a of daemon.addresses) say(`krd: listening on ${a}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      say(`krd: ${signal}, shutting down`);
      daemon.close().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  // everything is closed and written; the watchers of still-running containers hold connections
  // to their supervisors that would keep the process alive for ever (the containers go on without krd)
  process.exit(0);
}

void runCli('krd', async () => {
  const args = process.argv.slice(2);
  if (args[0] === 'certs') return certs(args.slice(1));
  return serve(args);
});
