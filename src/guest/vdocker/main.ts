// vdocker's program inside the guest, started by the guest's init with KRAUD_LAUNCH naming the
// launch spec (src/vm/launch-spec.ts, src/vm/README.md). The spec's containers run under krd-shim in
// the ns runtime's layout under /run/cradle (init started them); vdocker reattaches to them, listens
// on spec.vdocker.listen with spec.secret, and creates the containers the host asks for on the
// pod's image disks (/run/cradle/img/<N>). Also runs on the host for tests: KRAUD_VDOCKER_ROOT
// replaces /run/cradle, KRAUD_VDOCKER_IMAGES (":"-separated dirs) the image mounts,
// KRAUD_VDOCKER_PORT the port (0: any free one; the line on stdout names it).
// Its messages go to the guest console (init gives it no stdio), which the host keeps in the
// pod's console.log; the rest of vdocker is imported only after the first line, so the log shows
// how long node itself took to start and how long loading the code took.
import { execFile } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const t0 = performance.now();
let consoleFd = -1;
try {
  if (existsSync('/dev/hvc0') && process.env.KRAUD_LAUNCH?.startsWith('/run/cradle/')) consoleFd = openSync('/dev/hvc0', 'w');
} catch {
  // no console: stderr only
}
const say = (line: string) => {
  const text = `vdocker: ${line} (${Math.round(performance.now())} ms since node started)\n`;
  if (consoleFd >= 0) writeSync(consoleFd, text);
  else process.stderr.write(text);
};
process.on('uncaughtException', (err) => {
  say(`failed: ${err.stack ?? err}`);
  process.exit(1);
});
say('node up');

const launch = process.env.KRAUD_LAUNCH;
if (!launch) {
  say('KRAUD_LAUNCH (the launch spec file) is not set');
  process.exit(2);
}
// In the guest: the initramfs's static krd-shim, and the tools disk's spawner run through its loader
// (set before the ns runtime's modules load; they read them once)
const tools = fileURLToPath(new URL('../../../../', import.meta.url)).replace(/\/$/, '');
if (consoleFd >= 0 && existsSync('/bin/krd-shim') && existsSync(`${tools}/bin/krd-spawner`)) {
  process.env.KRAUD_SHIM ??= '/bin/krd-shim';
  // a pod runs the containers it was booted with: no supervisors waiting for more (memory is tight)
  process.env.KRAUD_SHIM_POOL ??= '0';
  process.env.KRAUD_SPAWNER ??= JSON.stringify([`${tools}/lib/ld-linux-x86-64.so.2`, '--library-path', `${tools}/lib`, `${tools}/bin/krd-spawner`]);
}
const [{ parseLaunchSpec, SHARED_FILE }, { NsRuntime }, { startVdocker }, { cradleNics }] = await Promise.all([import('../../vm/launch-spec.ts'), import('../../runtime/ns/ns-runtime.ts'), import('./server.ts'), import('./nics.ts')]);
say(`code loaded in ${Math.round(performance.now() - t0)} ms`);
const spec = parseLaunchSpec(readFileSync(launch, 'utf8'));
if (!spec.vdocker) {
  say('the launch spec has no vdocker section');
  process.exit(2);
}
const root = process.env.KRAUD_VDOCKER_ROOT ?? '/run/cradle';
// docker run --init: the tools disk carries a static tini beside node
// (the tools disk: bin/node, bin/tini-static, app/src/guest/vdocker/main.ts)
const tini = `${tools}/bin/tini-static`;
if (!process.env.KRAUD_INIT && existsSync(tini)) process.env.KRAUD_INIT = tini;
// the guest's clock (no RTC, no kvmclock under TCG) is set from the host's through init's settime
const run = promisify(execFile);
const setClock = consoleFd >= 0 ? async (unixMs: number) => void (await run('/init', ['settime', String(unixMs)], { timeout: 10_000 })) : undefined;
const images = process.env.KRAUD_VDOCKER_IMAGES?.split(':') ?? spec.images.map((_, i) => join(root, 'img', String(i)));
const vd = await startVdocker({
  runtime: new NsRuntime(root, { podNetwork: true }),
  secret: spec.secret,
  images,
  setClock,
  // mounted by init (virtiofs); on the host (tests) the launcher puts links there
  shares: new Map((spec.shares ?? []).map((sh) => [sh.tag, { source: join(root, 'shares', sh.tag, ...(sh.file ? [SHARED_FILE] : [])), readonly: sh.readonly }])),
  nics: consoleFd >= 0 ? cradleNics : undefined,
  containers: spec.containers.map((c) => ({
    id: c.name,
    name: c.name,
    image: spec.images[c.image].digest,
    imageId: spec.images[c.image].digest,
    config: { Cmd: c.args, Env: c.env, WorkingDir: c.cwd, User: c.user, Tty: c.tty, OpenStdin: c.openStdin, Hostname: c.hostname },
  })),
  host: spec.vdocker.listen.address,
  etcDir: root,
  port: process.env.KRAUD_VDOCKER_PORT !== undefined ? Number(process.env.KRAUD_VDOCKER_PORT) : spec.vdocker.listen.port,
});
say(`listening on ${spec.vdocker.listen.address}:${vd.port}`);
// on the host, one line on stdout once listening: what a launcher there waits for (the guest's
// init gives vdocker no stdout)
if (consoleFd < 0) process.stdout.write(`vdocker listening on ${spec.vdocker.listen.address}:${vd.port}\n`);
const stop = () => void vd.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
