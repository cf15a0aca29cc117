// Starting krd: defaults for socket and data root, the state database, services, routes and
// listeners. Everything krd owns lives under the data root and the socket paths given, so
// several krd can run side by side.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KrError } from '../util/errors.ts';
import type { InsecureOption } from '../image/reference.ts';
import { KRD_VERSION, type EngineContext, type RuntimeName } from './context.ts';
import { ImageService } from './images/service.ts';
import { ContainerService } from './containers/service.ts';
import { NsRuntime } from '../runtime/ns/ns-runtime.ts';
import { VmRuntime } from '../runtime/vm/vm-runtime.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { bootHostPod } from '../runtime/vm/host-pod.ts';
import { chooseAccel } from '../vm/qemu.ts';
import { Router } from './router.ts';
import { imageRoutes } from './routes/images.ts';
import { containerRoutes } from './routes/containers.ts';
import { execRoutes } from './routes/execs.ts';
import { ExecService } from './execs/service.ts';
import { VolumeService } from './volumes/service.ts';
import { volumeRoutes } from './routes/volumes.ts';
import { systemDfRoutes } from './routes/system-df.ts';
import { EventService } from './events/service.ts';
import { eventRoutes } from './routes/events.ts';
import { archiveRoutes } from './routes/archive.ts';
import { ArchiveService } from './archive/service.ts';
import { statsRoutes } from './routes/stats.ts';
import { StatsService } from './stats/service.ts';
import { ContainerLayers } from './containers/layers.ts';
import { changesRoute, commitRoute, exportRoute } from './routes/layers.ts';
import { ContainerUpdates } from './containers/update.ts';
import { updateRoute } from './routes/update.ts';
import { HealthMonitor } from './health/monitor.ts';
import { networkRoutes } from './routes/networks.ts';
import { NetworkService } from './networks/service.ts';
import { ContainerNetworks } from './networks/attachments.ts';
import { hijackHandler } from './routes/hijack.ts';
import { systemRoutes } from './routes/system.ts';
import { EngineServer, describe, parseHost, type TlsFiles } from './server.ts';
import { StateDb } from './state/db.ts';

export interface DaemonOptions {
  hosts?: string[];
  dataRoot?: string;
  runtime?: RuntimeName;
  tls?: TlsFiles;
  trusted?: Uint8Array[];
  insecureRegistries?: InsecureOption;
  env?: NodeJS.ProcessEnv;
  /** The default bridge's address and prefix (dockerd's --bip), used when krd first makes it. */
  bip?: string;
}

export interface Daemon {
  context: EngineContext;
  /** "unix:///…" and "tcp://…" as listening. */
  addresses: string[];
  close(): Promise<void>;
}

/** root: /run/kraud/krd.sock and /var/lib/kraud; others: $XDG_RUNTIME_DIR/kraud/krd.sock and ~/.local/share/kraud. */
export function defaultPaths(env: NodeJS.ProcessEnv = process.env): { socket: string; dataRoot: string } {
  if (process.getuid?.() === 0) return { socket: '/run/kraud/krd.sock', dataRoot: '/var/lib/kraud' };
  const runtimeDir = env.XDG_RUNTIME_DIR || join('/tmp', `kraud-${process.getuid?.() ?? 'user'}`);
  const dataHome = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return { socket: join(runtimeDir, 'kraud', 'krd.sock'), dataRoot: join(dataHome, 'kraud') };
}

function engineId(dataRoot: string): string {
  const file = join(dataRoot, 'engine-id');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    const id = randomBytes(16).toString('hex').replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5');
    writeFileSync(file, id + '\n', { flush: true });
    return id;
  }
}

/**
 * One krd per data root: krd.pid names the owner. A file left by a killed krd names a dead
 * process (or one that is not krd) and is taken over.
 */
function lockDataRoot(dataRoot: string): () => void {
  mkdirSync(dataRoot, { recursive: true });
  const file = join(dataRoot, 'krd.pid');
  let pid = 0;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    // no owner
  }
  if (pid > 0 && pid !== process.pid) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      // gone
    }
    if (/krd/.test(cmdline)) throw new KrError('conflict', `data root ${dataRoot} is in use by krd (pid ${pid})`);
  }
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, `${process.pid}\n`, { flush: true });
  renameSync(tmp, file);
  return () => {
    try {
      if (Number(readFileSync(file, 'utf8').trim()) === process.pid) rmSync(file);
    } catch {
      // already gone
    }
  };
}

/**
 * vm where KVM is usable (a pod VM per container, as kraud means it), else ns: under TCG a pod
 * takes minutes to come up, too slow to be anyone's default. The reason is shown at start.
 */
export function defaultRuntime(env: NodeJS.ProcessEnv = process.env): { name: RuntimeName; why: string } {
  const accel = chooseAccel(env);
  return accel === 'kvm' ? { name: 'vm', why: 'KVM is usable' } : { name: 'ns', why: 'no usable KVM (--runtime vm runs pods under TCG)' };
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const defaults = defaultPaths(opts.env);
  const dataRoot = opts.dataRoot ?? defaults.dataRoot;
  const runtime = opts.runtime ?? defaultRuntime(opts.env).name;
  if (runtime !== 'ns' && runtime !== 'vm') throw new KrError('invalid', `unknown runtime "${runtime}" (ns or vm)`);
  const listeners = (opts.hosts?.length ? opts.hosts : [`unix://${defaults.socket}`]).map(parseHost);
  if (listeners.some((l) => l.kind === 'tcp') && !opts.tls) {
    throw new KrError('invalid', 'refusing to listen on TCP without mutual TLS: pass --tlsverify --tlscacert --tlscert --tlskey (make them with krd certs DIR)');
  }
  const unlock = lockDataRoot(dataRoot);
  let state: StateDb;
  try {
    state = StateDb.open(join(dataRoot, 'krd.db'));
  } catch (err) {
    unlock();
    throw err;
  }
  try {
    const events = new EventService();
    const images = await ImageService.open(dataRoot, state, { insecureRegistries: opts.insecureRegistries, events });
    // containers' state (supervisor dirs, rootfs cache) lives under the data root too
    // KRAUD_VM_PODS=process: pods as host processes (vdocker over the ns runtime, no VM and no VM
    // isolation) — for testing the vm runtime through krd where no VM can boot in time
    const env = opts.env ?? process.env;
    const launcher = env.KRAUD_VM_PODS === 'process' ? bootHostPod : undefined;
    const rt: Runtime = runtime === 'vm' ? new VmRuntime(join(dataRoot, 'vm'), { accel: chooseAccel(env), launcher }) : new NsRuntime(join(dataRoot, 'runtime'));
    const networks = new NetworkService(state, dataRoot, events, { bip: opts.bip });
    await networks.init();
    const containerNetworks = new ContainerNetworks(networks, dataRoot);
    const volumes = new VolumeService(state, dataRoot, events);
    const containers = new ContainerService(state, images, rt, events, containerNetworks, volumes);
    containerNetworks.resolveContainer = (ref) => containers.resolve(ref);
    // a container the runtime does not hold (yet) has nothing to carry over
    containerNetworks.changed = async (id) => (await rt.reattach(id).catch(() => null))?.networksChanged?.();
    await containers.recover();
    await containerNetworks.recover();
    const execs = new ExecService(state, containers, rt);
    await execs.recover();
    const archive = new ArchiveService(containers, rt);
    const stats = new StatsService(containers, rt);
    const layers = new ContainerLayers(containers, rt, images);
    const updates = new ContainerUpdates(containers, rt);
    const health = new HealthMonitor(containers, rt, events);
    health.open();
    const context: EngineContext = { dataRoot, runtime, trusted: opts.trusted ?? [], state, images, containers, execs, archive, stats, layers, updates, volumes, events, networks, containerNetworks, id: engineId(dataRoot) };
    const router = new Router();
    systemRoutes(router, context);
    imageRoutes(router, context);
    containerRoutes(router, context);
    execRoutes(router, context);
    eventRoutes(router, context);
    archiveRoutes(router, context);
    statsRoutes(router, context);
    changesRoute(router, context);
    exportRoute(router, context);
    commitRoute(router, context);
    updateRoute(router, context);
    networkRoutes(router, context);
    volumeRoutes(router, context);
    systemDfRoutes(router, context);
    const server = await EngineServer.listen(listeners, (req, res) => void router.handle(req, res), opts.tls, hijackHandler(context));
    return {
      context,
      addresses: listeners.map((l) => describe(l, !!opts.tls)),
      close: async () => {
        health.close();
        await server.close();
        await containerNetworks.close();
        await networks.close();
        await rt.close?.();
        state.close();
        unlock();
      },
    };
  } catch (err) {
    state.close();
    unlock();
    throw err;
  }
}

export { KRD_VERSION };
