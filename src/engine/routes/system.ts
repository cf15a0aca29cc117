// /_ping, /version, /info: what every docker command asks first.
import { cpus, hostname, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { API_VERSION, MIN_API_VERSION } from '../api-version.ts';
import { KRD_VERSION, type EngineContext } from '../context.ts';
import { KrError } from '../../util/errors.ts';
import { checkLogin } from '../images/login.ts';
import { json, readJson, type Router } from '../router.ts';

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const UNAME_ARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ia32: 'i686', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

function operatingSystem(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1];
  } catch {
    // no os-release
  }
  return 'Linux';
}

export function systemRoutes(router: Router, ctx: EngineContext): void {
  const ping = (method: 'GET' | 'HEAD') =>
    router.add(method, /^\/_ping$/, ({ res }) => {
      res.writeHead(200, {
        'Api-Version': API_VERSION,
        'Docker-Experimental': 'false',
        Ostype: 'linux',
        Swarm: 'inactive',
        'Cache-Control': 'no-cache, no-store, must-revalidate',
        Pragma: 'no-cache',
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': 2,
      });
      res.end(method === 'GET' ? 'OK' : undefined);
    });
  ping('GET');
  ping('HEAD');

  router.add('GET', /^\/version$/, ({ res }) => {
    const details = { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Arch: GO_ARCH[process.arch] ?? process.arch, Os: 'linux', KernelVersion: release(), GoVersion: `node ${process.version}`, GitCommit: '', BuildTime: '', Experimental: 'false', Runtime: ctx.runtime };
    json(res, 200, {
      Platform: { Name: 'kraud' },
      Components: [{ Name: 'Engine', Version: KRD_VERSION, Details: details }],
      Version: KRD_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: '',
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: GO_ARCH[process.arch] ?? process.arch,
      KernelVersion: release(),
      BuildTime: '',
    });
  });

  router.add('POST', /^\/auth$/, async ({ req, res }) => {
    const body = (await readJson(req)) as { username?: unknown; password?: unknown; serveraddress?: unknown } | undefined;
    if (!body || typeof body !== 'object' || typeof body.username !== 'string' || typeof body.password !== 'string') {
      throw new KrError('invalid', 'username and password (strings) are required');
    }
    const server = typeof body.serveraddress === 'string' ? body.serveraddress : '';
    await checkLogin(server, body.username, body.password, ctx.images.insecureRegistries);
    json(res, 200, { Status: 'Login Succeeded', IdentityToken: '' });
  });

  router.add('GET', /^\/info$/, ({ res }) => {
    const c = ctx.state.containerCounts();
    json(res, 200, {
      ID: ctx.id,
      Containers: c.total,
      ContainersRunning: c.running,
      ContainersPaused: c.paused,
      ContainersStopped: c.stopped,
      Images: ctx.images.records.count(),
      Driver: 'overlayfs',
      DriverStatus: [['Backing Filesystem', 'kraud blob store'], ['Data Root', ctx.dataRoot]],
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'none'], Authorization: null, Log: ['json-file'] },
      MemoryLimit: true,
      SwapLimit: false,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      OomKillDisable: false,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: '2',
      NEventsListener: 0,
      KernelVersion: release(),
      OperatingSystem: operatingSystem(),
      OSVersion: '',
      OSType: 'linux',
      Architecture: UNAME_ARCH[process.arch] ?? process.arch,
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { IndexConfigs: {}, InsecureRegistryCIDRs: ['127.0.0.0/8', '::1/128'], Mirrors: [] },
      NCPU: cpus().length,
      MemTotal: totalmem(),
      DockerRootDir: ctx.dataRoot,
      HttpProxy: '',
      HttpsProxy: '',
      NoProxy: '',
      Name: hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: KRD_VERSION,
      Runtimes: { ns: { path: 'kraud-ns' }, vm: { path: 'kraud-vm' } },
      DefaultRuntime: ctx.runtime,
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: '',
      SecurityOptions: [],
      Warnings: null,
    });
  });
}
