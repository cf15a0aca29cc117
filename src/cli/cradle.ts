// cradle: one pod per microVM. Thin: parse arguments, call src/vm, print results.
import { readFileSync } from 'node:fs';
import { parse, result, runCli, say, UsageError } from './common.ts';
import { readTrustedIdentities } from '../bali/keys.ts';
import { KrError } from '../util/errors.ts';
import { summon, type PodContainerInput } from '../vm/pod-dir.ts';
import { runPod } from '../vm/run.ts';
import { chooseAccel } from '../vm/qemu.ts';

const usage = `cradle <command> [options]

commands:
  summon DIR IMAGE [options] [-- CMD ARGS...]   prepare a VM directory for IMAGE: a registry reference,
                                   a docker archive, an OCI layout or a signed bali file
      -e, --env K=V                environment (repeatable)
      -v, --volume SRC:DST[:ro]    share the host directory SRC at DST (virtiofs; every container)
      -p, --publish HOST:CTR[/udp] forward 127.0.0.1:HOST to the pod's port CTR (repeatable)
      --restart POLICY             no (default), always, unless-stopped, on-failure[:MAX] (in the guest)
      --mem SIZE                   guest memory (default 256m)
      --cpus N                     vCPUs (default 1)
      --pod FILE                   several containers sharing the pod's network (JSON, see src/vm/README.md)
      --net user|none              qemu user networking (default) or none
      --identity ID, --identity-file FILE   trusted signers of bali files
      --insecure-registry          plain HTTP / no TLS checks for the registry
  run DIR [--timings]              boot it in the foreground; exit status = the (first) container's
      --timings                    print the accelerator and per-phase times to stderr

KRAUD_ACCEL=kvm|tcg forces the accelerator (default kvm when usable).`;

function podContainers(file: string): PodContainerInput[] {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new KrError('invalid', `--pod ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  const list = (v as { containers?: unknown })?.containers;
  if (!Array.isArray(list) || list.length === 0) throw new KrError('invalid', `--pod ${file}: expected {"containers": [{"name": …, "cmd": […]}, …]}`);
  return list as PodContainerInput[];
}

async function summonCmd(args: string[]): Promise<void> {
  const dash = args.indexOf('--');
  const own = dash >= 0 ? args.slice(0, dash) : args;
  const cmd = dash >= 0 ? args.slice(dash + 1) : undefined;
  const { values, positionals } = parse(
    own,
    {
      env: { type: 'string', short: 'e', multiple: true },
      volume: { type: 'string', short: 'v', multiple: true },
      publish: { type: 'string', short: 'p', multiple: true },
      mem: { type: 'string' },
      cpus: { type: 'string' },
      pod: { type: 'string' },
      restart: { type: 'string' },
      net: { type: 'string' },
      identity: { type: 'string', multiple: true },
      'identity-file': { type: 'string', multiple: true },
      'insecure-registry': { type: 'boolean' },
    },
    'cradle summon DIR IMAGE [options] [-- CMD ARGS...]',
  );
  if (positionals.length !== 2) throw new UsageError('expected DIR and IMAGE\nusage: cradle summon DIR IMAGE [options] [-- CMD ARGS...]');
  if (values.net !== undefined && values.net !== 'user' && values.net !== 'none') throw new UsageError(`--net must be user or none, not ${values.net}`);
  if (values.cpus !== undefined && !/^\d+$/.test(values.cpus)) throw new UsageError(`--cpus must be a whole number, not ${values.cpus}`);
  const pod = await summon(positionals[0], {
    image: positionals[1],
    env: values.env,
    volumes: values.volume,
    ports: values.publish,
    memory: values.mem,
    cpus: values.cpus === undefined ? undefined : Number(values.cpus),
    cmd,
    restart: values.restart,
    containers: values.pod ? podContainers(values.pod) : undefined,
    network: values.net as 'user' | 'none' | undefined,
    trusted: readTrustedIdentities(values.identity ?? [], values['identity-file'] ?? []),
    insecureRegistry: values['insecure-registry'],
  });
  result(`${positionals[0]}: pod ${pod.spec.podId}, ${pod.spec.containers.length} container(s), ${pod.spec.resources.memoryMiB} MiB, ${pod.spec.resources.cpus} vCPU`);
}

async function runCmd(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { timings: { type: 'boolean' }, debug: { type: 'boolean' } }, 'cradle run DIR [--timings]');
  if (positionals.length !== 1) throw new UsageError('expected DIR\nusage: cradle run DIR [--timings]');
  const accel = chooseAccel();
  if (values.timings) say(`accel: ${accel}`);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await runPod(positionals[0], {
      stdout: process.stdout,
      stderr: process.stderr,
      signal: ac.signal,
      accel,
      debug: values.debug,
      onPhase: values.timings ? (p, ms) => say(`${p}: ${Math.round(ms)} ms`) : undefined,
      onRetry: (message) => say(`cradle: ${message}`),
    });
    for (const e of r.errors) say(`cradle: ${e}`);
    process.exitCode = r.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await runCli('cradle', async () => {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'summon') return summonCmd(args);
  if (command === 'run') return runCmd(args);
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    result(usage);
    return;
  }
  throw new UsageError(`unknown command: ${command}\n${usage}`);
});
