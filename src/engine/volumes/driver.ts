// The volume driver seam. krd's VolumeService keeps the records (name, driver, options, labels)
// and who uses what; a driver only owns the storage behind a name. The calls are shaped so that
// the drivers planned after `local` fit without changing the service:
//   - local: a directory on this host (or a host mount: tmpfs, a device, a bind of a host dir).
//   - lv (later): a local block volume (an LVM logical volume). create() allocates it, mount()
//     hands the runtime what to attach: a filesystem path for the ns runtime (mounted on the
//     host) or the block device itself for a microVM (`kind: 'block'` in MountTarget).
//   - gfs (later): a shared filesystem that many pods, on many hosts, mount at once
//     (capabilities().shared, scope 'global'); mount() and unmount() are per container, so a
//     driver can keep its own reference counts, leases or fences.
// Everything a driver needs to find its storage again after a krd restart is in (name, options):
// drivers keep no state of their own beyond what is on disk.
export interface VolumeCapabilities {
  /** docker's Scope: 'local' (this host only) or 'global' (the cluster sees the same volume). */
  scope: 'local' | 'global';
  /** Several containers may have it mounted read-write at the same time (docker: always true for local). */
  shared: boolean;
}

/** What a runtime attaches for a mounted volume. */
export interface MountTarget {
  kind: 'directory';
  /** Host path to bind into the container. */
  path: string;
  /** The volume's own options make it read-only, whatever the container asked (o=bind,ro). */
  readonly?: boolean;
}

export interface VolumeDriver {
  readonly name: string;
  capabilities(): VolumeCapabilities;
  /** Throws KrError('invalid') with docker's message for options this driver does not take. */
  checkOptions(options: Record<string, string>): void;
  /** Makes the storage; returns docker's Mountpoint. Must leave nothing behind when it throws. */
  create(name: string, options: Record<string, string>): Promise<{ mountpoint: string }>;
  /** Removes the storage (unmounting it first when needed); a missing one is not an error. */
  remove(name: string, options: Record<string, string>): Promise<void>;
  /** Makes the volume ready for container `user`; the returned target is what gets bound. */
  mount(name: string, options: Record<string, string>, user: string): Promise<MountTarget>;
  /** Container `user` is done with it; `last` when no other container still holds it. */
  unmount(name: string, options: Record<string, string>, user: string, last: boolean): Promise<void>;
  /** Bytes used (docker's UsageData.Size), -1 when the driver cannot tell. */
  size(name: string, options: Record<string, string>): Promise<number>;
}
