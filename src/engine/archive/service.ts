// docker cp on the daemon's side: GET/HEAD/PUT /containers/{id}/archive. The rules (path
// resolution inside the container, naming, the hardened extraction) belong to the runtime's
// Container (statPath/getArchive/putArchive); this adds docker's container-level checks and events.
import type { Readable } from 'node:stream';
import { isKrError, KrError } from '../../util/errors.ts';
import type { PathStat, Runtime } from '../../runtime/runtime.ts';
import type { ContainerService } from '../containers/service.ts';

/** The X-Docker-Container-Path-Stat header: base64 of the stat's JSON. */
export function pathStatHeader(stat: PathStat): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

/** docker names the container as the request did: "Could not find the file /x in container web". */
function asAsked<T>(ref: string, path: string, p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw isKrError(err, 'not-found') && err.message.startsWith('Could not find the file') ? new KrError('not-found', `Could not find the file ${path} in container ${ref}`) : err;
  });
}

export class ArchiveService {
  private readonly containers: ContainerService;
  private readonly runtime: Runtime;

  constructor(containers: ContainerService, runtime: Runtime) {
    this.containers = containers;
    this.runtime = runtime;
  }

  async stat(ref: string, path: string): Promise<PathStat> {
    const r = this.containers.resolve(ref);
    return asAsked(ref, path, this.runtime.reattach(r.id).then((c) => c.statPath(path)));
  }

  async get(ref: string, path: string): Promise<{ stat: PathStat; tar: Readable }> {
    const r = this.containers.resolve(ref);
    const out = await asAsked(ref, path, this.runtime.reattach(r.id).then((c) => c.getArchive(path)));
    this.containers.event(r, 'archive-path');
    return out;
  }

  /** A read-only root (or ro bind) refuses through the runtime (EROFS → 400). copyUIDGID: the files get the container's USER (as docker cp -a does); otherwise the tar's owners. */
  async put(ref: string, path: string, tar: AsyncIterable<Buffer>, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void> {
    const r = this.containers.resolve(ref);
    const c = await this.runtime.reattach(r.id);
    await asAsked(ref, path, c.putArchive(path, tar, { noOverwriteDirNonDir: opts.noOverwriteDirNonDir, ownerUser: opts.copyUIDGID && r.config.User ? r.config.User : undefined }));
    this.containers.event(r, 'extract-to-dir');
  }
}
