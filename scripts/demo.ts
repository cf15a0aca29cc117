// `make run`: the image pipeline end to end on a sample image, saying what it does at each step.
// 1. build a small busybox image locally (layers with a deletion and a hardlink),
// 2. serve it from a real registry on loopback (Debian's docker-registry) and push it there,
// 3. `bali pack` it from the registry into one flattened, signed file,
// 4. `bali verify`, list its files, `bali inspect` it,
// 5. `bali build` a Dockerfile FROM it and `bali run` the result,
// 6. start krd (left running) and run a container from the same image with the docker CLI.
// Everything lives in .cache/demo (its own signing key too); nothing outside is touched.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildImage, standardLayers } from '../test/kit/build-image.ts';
import { startRegistry } from '../test/kit/registry.ts';
import { push } from '../src/image/registry/index.ts';
import { pingUnix } from '../test/kit/krd.ts';

const repo = path.resolve(import.meta.dirname, '..');
const bali = path.join(repo, 'node_modules', '.bin', 'bali');
const demo = path.join(repo, '.cache', 'demo');
fs.rmSync(demo, { recursive: true, force: true });
fs.mkdirSync(demo, { recursive: true });
const env = { ...process.env, IDENTITYKIT_PATH: path.join(demo, 'identitykit'), IDENTITYKIT_SECRET: '', KRAUD_STORE: path.join(demo, 'store'), KRAUD_BUILD_CACHE: path.join(demo, 'build-cache') };

function step(text: string): void {
  process.stdout.write(`\n==> ${text}\n`);
}

function show(args: string[], opts: { filter?: (out: string) => string } = {}): string {
  process.stdout.write(`$ bali ${args.join(' ')}\n`);
  const r = spawnSync(bali, args, { env, encoding: 'utf8' });
  const out = opts.filter ? opts.filter(r.stdout) : r.stdout;
  process.stdout.write(out + (r.stderr ? r.stderr : ''));
  if (r.status !== 0) throw new Error(`bali ${args[0]} failed with exit code ${r.status}`);
  return r.stdout;
}

step('Building a sample image locally: a busybox rootfs in 3 layers (with deletions, an opaque dir, hardlinks)');
const built = await buildImage(path.join(demo, 'image'), standardLayers(), {
  config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo "hello from a bali image, running as $(id -un) in $(pwd)"'], Env: ['PATH=/usr/bin:/bin'], WorkingDir: '/home/user', User: '1000:1000' },
});
console.log(`image ${built.image.manifestDigest}, ${built.image.layers.length} layers`);

step('Starting a registry on loopback (Debian docker-registry) and pushing the image with our client');
const registry = await startRegistry();
try {
  const ref = `${registry.host}/demo/busybox:latest`;
  const pushed = await push(built.image, ref);
  console.log(`pushed ${ref} → ${pushed.digest}`);

  step('Packing it from the registry into one flattened, signed file');
  const id = show(['id']).trim();
  const file = path.join(demo, 'busybox.tar.gz');
  show(['pack', ref, file]);

  step('Verifying the signature against our identity');
  show(['verify', file, '--identity', id]);

  step('Its files (it is a plain tar.gz: GNU tar reads it)');
  const listing = spawnSync('tar', ['-tzvf', file], { encoding: 'utf8' }).stdout.split('\n');
  console.log(listing.slice(0, 12).join('\n') + `\n... ${listing.length - 1} entries`);

  step('What the file says about itself');
  show(['inspect', file]);

  if (process.getuid?.() === 0) {
    step('Building a Dockerfile FROM it (no docker daemon), then running the result with bali run');
    const ctx = path.join(demo, 'context');
    fs.mkdirSync(ctx);
    fs.copyFileSync(file, path.join(ctx, 'busybox.tar.gz'));
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM ./busybox.tar.gz\nUSER root\nRUN echo "built by bali build" > /etc/motd\nUSER 1000:1000\nCMD ["cat /etc/motd; echo \\"hello from a bali image, running as $(id -un) in $(pwd)\\""]\n');
    console.log(fs.readFileSync(path.join(ctx, 'Dockerfile'), 'utf8'));
    const app = path.join(demo, 'app.tar.gz');
    show(['build', app, ctx]);
    show(['run', '--identity', id, app]);
  }
} finally {
  await registry.stop();
}

// krd with its embedded defaults, left running for the user; a sample container through the
// real docker CLI. Idempotent: a krd already answering on the socket is reused.
let dockerHost = '';
if (process.getuid?.() === 0) {
  step('Starting krd (the Docker API daemon) with its defaults, and running a sample container with the docker CLI');
  const socket = '/run/kraud/krd.sock';
  dockerHost = `unix://${socket}`;
  if ((await pingUnix(socket)) !== 200) {
    const log = fs.openSync(path.join(demo, 'krd.log'), 'a');
    const krd = spawn(path.join(repo, 'node_modules', '.bin', 'krd'), [], { detached: true, stdio: ['ignore', log, log] });
    krd.unref();
    for (let i = 0; i < 100 && (await pingUnix(socket)) !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    if ((await pingUnix(socket)) !== 200) throw new Error(`krd did not start; see ${path.join(demo, 'krd.log')}`);
    console.log(`krd started (pid ${krd.pid}), listening on ${socket}, state in /var/lib/kraud, log in ${path.join(demo, 'krd.log')}`);
  } else console.log(`krd already running on ${socket}`);
  const docker = (args: string[]): void => {
    process.stdout.write(`$ docker ${args.join(' ')}\n`);
    const r = spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: dockerHost, DOCKER_CONFIG: path.join(demo, 'docker-config') }, encoding: 'utf8' });
    process.stdout.write(r.stdout + r.stderr);
    if (r.status !== 0) throw new Error(`docker ${args[0]} failed with exit code ${r.status}`);
  };
  docker(['load', '-i', built.dockerArchive]);
  docker(['run', '--rm', 'kraud-test:latest', 'echo "hello from a container run by krd, as $(id -un), PID $$ in its own namespace"']);
  docker(['ps', '-a']);
}

console.log(`
Done. Everything above is in ${path.relative(process.cwd(), demo) || demo}. To try it yourself:
  export IDENTITYKIT_PATH=${env.IDENTITYKIT_PATH}
  node_modules/.bin/bali inspect ${path.join(demo, 'app.tar.gz')}
  node_modules/.bin/bali run --identity $(node_modules/.bin/bali id) --entrypoint /bin/ls ${path.join(demo, 'app.tar.gz')} -- -la /
  node_modules/.bin/bali --help
${
  dockerHost
    ? `
krd keeps running in the background. Drive it with the docker CLI:
  export DOCKER_HOST=${dockerHost}
  docker images
  docker run --rm -it kraud-test:latest sh
Stop it with: kill $(cat /var/lib/kraud/krd.pid)
`
    : ''
}
The same image in a microVM of its own (cradle; a few seconds to boot under TCG):
  node_modules/.bin/cradle summon /tmp/kraud-pod ${path.join(demo, 'image', 'image.docker.tar')} -- 'echo hello from a microVM'
  node_modules/.bin/cradle run /tmp/kraud-pod --timings
`);
