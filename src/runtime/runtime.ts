// The runtime seam: what krd asks of whatever runs a container (namespaces here, a microVM in
// cradle later). Shaped after containerd's shim API. krd never knows which runtime it talks to;
// runtimeConformance (./conformance.ts) proves each one against the same behaviour.
import type { Readable, Writable } from 'node:stream';
import type { Image } from '../image/types.ts';
import type { NetCounters } from './net-dev.ts';
import type { FsChange } from './archive/upper-layer.ts';

/** Mounted in the order given (a caller puts /a before /a/b). */
export type MountSpec =
  | {
      type: 'bind';
      source: string;
      target: string;
      readonly?: boolean;
      /**
       * A volume's directory: when it is empty, first fill it with what the image has at target
       * (owners, modes, links, xattrs kept; the directory's own owner and mode too), as docker
       * does for a new volume.
       */
      populate?: boolean;
    }
  /** options: mount(8) words, flags (noexec, ro…) and tmpfs's own (size=64m, mode=1777…). */
  | { type: 'tmpfs'; target: string; options?: string[] };

export interface Resources {
  /** Memory limit in bytes (docker --memory). */
  memoryBytes?: number;
  /** CPU quota in units of 1e-9 CPUs (docker --cpus × 1e9, NanoCpus). */
  nanoCpus?: number;
  /** Relative CPU weight (docker --cpu-shares). */
  cpuShares?: number;
  /** Most processes (docker --pids-limit). */
  pidsLimit?: number;
}

export interface ContainerSpec {
  /** Unique among this runtime's containers; [A-Za-z0-9_.-], as docker's ids and names. */
  id: string;
  /** The image (its flattened rootfs is cached per manifest digest) or a ready root directory. */
  rootfs: { image: Image } | { dir: string };
  /** The full command: entrypoint + cmd already joined by the caller. */
  args: string[];
  /** KEY=VALUE; docker's default PATH is added when none is given. */
  env?: string[];
  cwd?: string;
  /** USER[:GROUP], names resolved against the container's own /etc/passwd and /etc/group. */
  user?: string;
  tty?: boolean;
  openStdin?: boolean;
  hostname?: string;
  mounts?: MountSpec[];
  resources?: Resources;
  /** Capability names without CAP_ ("NET_ADMIN"), or "ALL"; applied to docker's default set. */
  capAdd?: string[];
  capDrop?: string[];
  readonlyRootfs?: boolean;
  /** Written under /proc/sys in the container's namespaces before its process starts (key: net.core.somaxconn). */
  sysctls?: Record<string, string>;
  /** Run a small init (tini) as PID 1 that forwards signals and reaps zombies (docker --init). */
  init?: boolean;
  /** 'none': own network namespace with lo only; 'host': the caller's; or a netns file to join. */
  network?: 'none' | 'host' | { netnsPath: string };
}

export interface ExecSpec {
  args: string[];
  env?: string[];
  cwd?: string;
  user?: string;
  tty?: boolean;
  openStdin?: boolean;
}

export interface ExitStatus {
  /** 128 + signal number when killed by a signal, as docker reports it. */
  exitCode: number;
  /** The signal's name (SIGKILL) when the process died of one. */
  signal?: string;
  finishedAt: Date;
}

/** Live streams of a process: one `stdout` carrying everything with a tty (stderr null then). */
export interface Stdio {
  /** null unless the process was created with openStdin. Ending it closes the process's stdin. */
  stdin: Writable | null;
  stdout: Readable;
  stderr: Readable | null;
}

export type Status = 'created' | 'running' | 'exited';

export interface ProcessState {
  status: Status;
  /** Host pid while running. */
  pid?: number;
  exit?: ExitStatus;
}

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  time: Date;
  /** Nanoseconds part of the time stamp, for docker's RFC 3339 nano output. */
  nanos: number;
  data: Buffer;
}

export interface LogOptions {
  since?: Date;
  until?: Date;
  /** Keep reading until the container exits. */
  follow?: boolean;
  /** Only the last n entries (before following). */
  tail?: number;
  signal?: AbortSignal;
}

export interface Stats {
  /** stats: the cgroup's memory.stat counters (inactive_file, … or v1's total_inactive_file, …). */
  memory: { usage: number; limit: number | null; stats?: Record<string, number> };
  /** Total CPU time used, in nanoseconds. */
  cpuNanos: number;
  pids: number;
  /** Traffic per interface of the container's own network namespace (not lo); none for host or none networking. */
  networks?: Record<string, NetCounters>;
  read: Date;
}

/** docker's X-Docker-Container-Path-Stat: what `docker cp` learns about a path before copying. */
export interface PathStat {
  /** Base name of the path as asked ("." for "dir/.", "/" for the root). */
  name: string;
  size: number;
  /** Go's os.FileMode bits (1<<31 directory, 1<<27 symlink, …) plus the permission bits. */
  mode: number;
  /** RFC 3339. */
  mtime: string;
  /** For a symlink: where it leads, as a path inside the container; '' otherwise. */
  linkTarget: string;
}

export interface PutArchiveOptions {
  /** Refuse to replace a directory with a non-directory and the other way round (docker cp does). */
  noOverwriteDirNonDir?: boolean;
  /** Give every extracted entry this USER[:GROUP] (looked up in the container); else the tar's owners. */
  ownerUser?: string;
}

export interface TopResult {
  titles: string[];
  processes: string[][];
}

/** A process the runtime supervises: the container's main process or an exec. */
export interface RuntimeProcess {
  readonly id: string;
  /** Streams from now on; connect before start() to see everything. */
  attach(): Promise<Stdio>;
  start(): Promise<void>;
  /** A signal name (SIGTERM) or number. */
  kill(signal: string | number): Promise<void>;
  /** Resolves when the process has exited (at once if it already has). */
  wait(): Promise<ExitStatus>;
  resize(rows: number, cols: number): Promise<void>;
  state(): Promise<ProcessState>;
  /** Forgets the process's state (an exec's, once it has exited); kills it first if `force`. */
  delete(opts?: { force?: boolean }): Promise<void>;
}

export interface Container extends RuntimeProcess {
  /**
   * After the main process exited: sets up a new one from the same spec, waiting for start() as
   * after create (attach first to see all of its output). The rootfs keeps its changes (same
   * upper layer), the log is appended to. docker start of an exited container, restart policies.
   */
  recreate(): Promise<void>;
  /** Freezes every process of the container (docker pause); signals wait until resume. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  exec(id: string, spec: ExecSpec): Promise<RuntimeProcess>;
  /** An exec made earlier, possibly by another Runtime object (krd restarted): 'not-found' if gone. */
  execProcess(id: string): Promise<RuntimeProcess>;
  /** The main process's output as kept on disk, with time stamps per stream. */
  logs(opts?: LogOptions): AsyncIterable<LogEntry>;
  stats(): Promise<Stats>;
  /**
   * docker top: `ps` with these arguments (docker's default -ef when empty) over the container's
   * processes, as a header and rows split like docker's (the last column keeps its spaces). The
   * ns runtime runs the host's ps filtered to the container's cgroup; a VM runs ps in its guest.
   */
  top(psArgs: string[]): Promise<TopResult>;
  /*
   * docker cp, in any state (created, running, exited): paths are resolved inside the container's
   * filesystem as its processes see it, mounts included, symlinks never leading out of it (an
   * absolute target starts at the container's root). The rules are docker's (see
   * archive/in-root.ts, which a runtime with a host view of the filesystem uses as is; a VM
   * runtime answers the same three calls from its guest agent). A missing path is a 'not-found'
   * KrError "Could not find the file P in container ID"; bad input (a hostile tar, a target that
   * is not a directory) is 'invalid'.
   */
  /** Stat of a path; the last element is not followed (a symlink reports its linkTarget). */
  statPath(path: string): Promise<PathStat>;
  /** A tar of the path: "/dir" → "dir/…", "/dir/." → "./…", a file → its base name. */
  getArchive(path: string): Promise<{ stat: PathStat; tar: Readable }>;
  /** Extracts a tar (or gzipped tar) into the existing directory at path (a link to one is followed). */
  putArchive(path: string, tar: AsyncIterable<Buffer>, opts?: PutArchiveOptions): Promise<void>;
  /** docker update: new limits (given fields only; pidsLimit -1 lifts that limit), live if it runs. */
  update(r: Resources): Promise<void>;
  /** docker diff: what the container changed in its image's files (not in its mounts), parents first. */
  changes(): Promise<FsChange[]>;
  /** docker commit: those changes as an image layer tar (deletions as ".wh." files). */
  layer(): Promise<Readable>;
  /** Removes every trace (state dir, upper dir, cgroups); kills the process first if `force`. */
  delete(opts?: { force?: boolean }): Promise<void>;
  /**
   * The container's network namespace gained or lost interfaces (docker network connect and
   * disconnect). Absent where its processes live in that namespace and see it at once (ns); a VM
   * carries the change into its guest.
   */
  networksChanged?(): Promise<void>;
}

export interface Runtime {
  readonly name: string;
  create(spec: ContainerSpec): Promise<Container>;
  /** Finds a container created earlier, possibly by another Runtime object (krd restarted). */
  reattach(id: string): Promise<Container>;
  list(): Promise<string[]>;
  /** krd stops: lets go of what was held for later creates (e.g. pooled supervisors); containers go on. */
  close?(): Promise<void>;
}
