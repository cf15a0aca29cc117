// vdocker: the Docker API subset a pod serves on port 1 of its address, for the host only (the
// per-pod secret on every request). It is krd's own code on a smaller stage: the pod's fixed
// containers are records in an in-memory state database, run by whatever Runtime it is given (the
// ns runtime inside the VM; on the host in tests), served by krd's ContainerService, ExecService,
// routes and hijack handler — so vdocker answers exactly as krd does. The host adds containers with
// POST /kraud/containers (./create.ts), not docker's create (the host has merged the image config
// already). Not served: images, volumes, networks, events.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { API_VERSION, MIN_API_VERSION } from '../../engine/api-version.ts';
import type { ContainerConfig } from '../../engine/containers/config.ts';
import { ContainerService, type ContainerNetworking } from '../../engine/containers/service.ts';
import { listNetworkView, networkSettingsView } from '../../engine/networks/settings-view.ts';
import { ExecService } from '../../engine/execs/service.ts';
import { json, noContent, readJson, Router } from '../../engine/router.ts';
import { ArchiveService } from '../../engine/archive/service.ts';
import { EventService } from '../../engine/events/service.ts';
import { StatsService } from '../../engine/stats/service.ts';
import { ContainerLayers } from '../../engine/containers/layers.ts';
import { changesRoute, podLayerRoute } from '../../engine/routes/layers.ts';
import { ContainerUpdates } from '../../engine/containers/update.ts';
import { updateRoute } from '../../engine/routes/update.ts';
import { archiveRoutes } from '../../engine/routes/archive.ts';
import { statsRoutes } from '../../engine/routes/stats.ts';
import { containerRoutes } from '../../engine/routes/containers.ts';
import { execRoutes } from '../../engine/routes/execs.ts';
import { hijackHandler } from '../../engine/routes/hijack.ts';
import { StateDb } from '../../engine/state/db.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import { KrError } from '../../util/errors.ts';
import { bearerCheck } from './auth.ts';
import { createInPod, parseCreateBody, podHostConfig, type PodShares } from './create.ts';
import { nicRoutes, type GuestNics } from './nics.ts';

export const VDOCKER_PORT = 1;
export const VDOCKER_VERSION = '0.1.0-kraud-vdocker';

/** One container of the pod as the launch spec describes it (its runtime id is `id`). */
export interface PodContainer {
  id: string;
  name: string;
  /** The image reference as the user gave it. */
  image: string;
  imageId?: string;
  config: Partial<Pick<ContainerConfig, 'Cmd' | 'Entrypoint' | 'Env' | 'WorkingDir' | 'User' | 'Tty' | 'OpenStdin' | 'StdinOnce' | 'Hostname' | 'Labels' | 'StopSignal'>>;
  created?: Date;
}

export interface VdockerOptions {
  runtime: Runtime;
  containers: PodContainer[];
  secret: string;
  /** Address to listen on (default all: the guest's own). */
  host?: string;
  /** Default 1, as the original; 0 picks a free one (tests). */
  port?: number;
  /** Root directories of the pod's images (launch spec images[N]), for containers the host creates. */
  images?: string[];
  /** The pod's shared host directories (launch spec shares), by tag. */
  shares?: PodShares;
  /** Sets the wall clock (in a VM guest, which has no clock of its own); absent: POST /kraud/clock is 404. */
  setClock?: (unixMs: number) => Promise<void>;
  /** Configures NICs the host hot-plugs (in a VM guest); absent: /kraud/nics is 404. */
  nics?: GuestNics;
  /** Where the records live (default in memory; a file lets a restarted vdocker keep exit codes). */
  statePath?: string;
  /** The directory with the pod's hosts, resolv.conf and hostname (init writes them), bound into the containers the host creates. */
  etcDir?: string;
}

export interface Vdocker {
  port: number;
  containers: ContainerService;
  close(): Promise<void>;
}

function configOf(c: PodContainer): ContainerConfig {
  const k = c.config;
  return {
    Hostname: k.Hostname ?? '',
    Domainname: '',
    User: k.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: !!k.Tty,
    OpenStdin: !!k.OpenStdin,
    StdinOnce: !!k.StdinOnce,
    Env: k.Env ?? [],
    Cmd: k.Cmd ?? null,
    Entrypoint: k.Entrypoint ?? null,
    Image: c.image,
    WorkingDir: k.WorkingDir ?? '',
    Labels: k.Labels ?? {},
    ...(k.StopSignal ? { StopSignal: k.StopSignal } : {}),
  };
}


/** The pod's one network is the VM's own: nothing to prepare or release per container. */
const POD_NETWORK: ContainerNetworking = {
  prepare: () => Promise.reject(new KrError('unavailable', 'containers are created with POST /kraud/containers here')),
  release: () => Promise.resolve(),
  started: () => Promise.resolve(),
  stopped: () => undefined,
  settings: () => networkSettingsView({ endpoints: [] }),
  listSummary: () => listNetworkView({ endpoints: [] }),
};

export async function startVdocker(opts: VdockerOptions): Promise<Vdocker> {
  const authorized = bearerCheck(opts.secret);
  const state = StateDb.open(opts.statePath ?? ':memory:');
  const containers = new ContainerService(state, null, opts.runtime, new EventService(), POD_NETWORK);
  for (const c of opts.containers) {
    if (containers.records.get(c.id)) continue;
    containers.records.insert({
      id: c.id,
      name: c.name,
      image_id: c.imageId ?? '',
      image_ref: c.image,
      created: c.created?.getTime(),
      runtime: opts.runtime.name,
      config: configOf(c),
      hostConfig: podHostConfig(),
    });
  }
  // containers the guest's init already started are watched from here on
  await containers.recover();
  const execs = new ExecService(state, containers, opts.runtime);
  const services = { containers, execs, archive: new ArchiveService(containers, opts.runtime), stats: new StatsService(containers, opts.runtime), layers: new ContainerLayers(containers, opts.runtime), updates: new ContainerUpdates(containers, opts.runtime) };

  const router = new Router();
  const ping = (method: 'GET' | 'HEAD') =>
    router.add(method, /^\/_ping$/, ({ res }) => {
      res.writeHead(200, { 'Api-Version': API_VERSION, Ostype: 'linux', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2 });
      res.end(method === 'GET' ? 'OK' : undefined);
    });
  ping('GET');
  ping('HEAD');
  router.add('GET', /^\/version$/, ({ res }) => {
    json(res, 200, { Version: VDOCKER_VERSION, ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Os: 'linux', Arch: process.arch === 'x64' ? 'amd64' : process.arch, Components: [{ Name: 'vdocker', Version: VDOCKER_VERSION, Details: {} }] });
  });
  containerRoutes(router, services, { create: false });
  router.add('POST', /^\/kraud\/containers$/, async ({ req, res }) => {
    json(res, 201, await createInPod(opts.runtime, containers, opts.images ?? [], opts.shares ?? new Map(), parseCreateBody(await readJson(req)), opts.etcDir));
  });
  // the runtime seam's own view, for the host's vm runtime: the process state (docker's inspect
  // shows the record, which stays "exited" between recreate and start) and recreate itself
  router.add('GET', /^\/kraud\/containers\/([^/]+)\/state$/, async ({ res, params }) => {
    const st = await (await opts.runtime.reattach(containers.resolve(params[0]).id)).state();
    json(res, 200, { status: st.status, pid: st.pid ?? 0, exit: st.exit ? { exitCode: st.exit.exitCode, signal: st.exit.signal ?? '', finishedAt: st.exit.finishedAt.toISOString() } : null });
  });
  router.add('POST', /^\/kraud\/containers\/([^/]+)\/recreate$/, async ({ res, params }) => {
    await (await opts.runtime.reattach(containers.resolve(params[0]).id)).recreate();
    noContent(res);
  });
  const setClock = opts.setClock;
  if (setClock) {
    router.add('POST', /^\/kraud\/clock$/, async ({ req, res }) => {
      const ms = (await readJson(req) as { unixMs?: unknown })?.unixMs;
      if (!Number.isSafeInteger(ms) || (ms as number) <= 0) throw new KrError('invalid', 'clock: unixMs must be a positive whole number');
      await setClock(ms as number);
      noContent(res);
    });
  }
  if (opts.nics) nicRoutes(router, opts.nics, opts.etcDir);
  archiveRoutes(router, services);
  statsRoutes(router, services);
  changesRoute(router, services);
  podLayerRoute(router, services);
  updateRoute(router, services);
  execRoutes(router, services);
  const hijack = hijackHandler(services);

  const server = http.createServer((req, res) => {
    if (!authorized(req)) {
      req.resume();
      json(res, 401, { message: 'unauthorized: this pod answers only the host that launched it' });
      return;
    }
    void router.handle(req, res);
  });
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req: http.IncomingMessage, sock: Duplex, head: Buffer) => {
    sock.on('error', () => undefined);
    if (!authorized(req)) {
      const body = JSON.stringify({ message: 'unauthorized' }) + '\n';
      sock.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    upgraded.add(sock);
    sock.once('close', () => upgraded.delete(sock));
    hijack(req, sock, head);
  });
  server.keepAliveTimeout = 60_000;
  server.requestTimeout = 0; // logs -f, wait and archives stream for as long as they need
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new KrError('unavailable', `vdocker cannot listen: ${err.message}`)));
    server.listen(opts.port ?? VDOCKER_PORT, opts.host ?? '0.0.0.0', () => resolve());
  }).catch((err) => {
    state.close();
    throw err;
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : (opts.port ?? VDOCKER_PORT),
    containers,
    close: async () => {
      for (const s of upgraded) s.destroy();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      state.close();
    },
  };
}
