// Writing the tree out as one tar: depth first, children sorted by name bytes, so parents come
// before children and the same tree always gives the same bytes. The first path of a hardlink
// group carries the content; later ones are links to it (so a link's target always precedes it).
import type { Writable } from 'node:stream';
import type { TarHeader } from '../tar/tar-header.ts';
import { END_OF_ARCHIVE, encodeHeader, padding } from '../tar/tar-writer.ts';
import type { Spool } from './spool.ts';
import type { Inode, Node, RootTree } from './tree.ts';

const BATCH = 1024 * 1024;

/** Batches small writes into ~1 MiB chunks and honours the destination's backpressure. */
export class BatchedWriter {
  private out: Writable;
  private parts: Buffer[] = [];
  private partBytes = 0;
  bytes = 0;
  constructor(out: Writable) {
    this.out = out;
  }
  async push(buf: Buffer): Promise<void> {
    if (buf.length === 0) return;
    this.parts.push(buf);
    this.partBytes += buf.length;
    this.bytes += buf.length;
    if (this.partBytes >= BATCH) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const chunk = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.partBytes);
    this.parts = [];
    this.partBytes = 0;
    if (this.out.destroyed) throw this.out.errored ?? new Error('output stream was closed');
    if (!this.out.write(chunk)) await waitForDrain(this.out);
  }
}

function waitForDrain(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(out.errored ?? new Error('output stream closed before the tar was written'));
    };
    out.on('drain', onDrain);
    out.on('error', onError);
    out.on('close', onClose);
  });
}

function headerOf(path: string, inode: Inode): TarHeader {
  return {
    path,
    type: inode.type,
    mode: inode.mode,
    uid: inode.uid,
    gid: inode.gid,
    uname: inode.uname,
    gname: inode.gname,
    mtime: inode.mtime,
    size: inode.type === 'file' ? inode.size : 0,
    linkname: inode.linkname,
    devmajor: inode.type === 'char' || inode.type === 'block' ? inode.devmajor : 0,
    devminor: inode.type === 'char' || inode.type === 'block' ? inode.devminor : 0,
    xattrs: inode.xattrs && inode.xattrs.size > 0 ? inode.xattrs : null,
  };
}

export async function emitTree(tree: RootTree, spool: Spool, writer: BatchedWriter): Promise<number> {
  let entries = 0;
  if (tree.rootExplicit) {
    await writer.push(encodeHeader(headerOf('./', tree.root.inode)));
    entries++;
  }
  // An explicit stack instead of recursion: deep trees cannot overflow the JS stack.
  const stack: Array<{ prefix: string; node: Node }> = [];
  const pushChildren = (prefix: string, dir: Node): void => {
    const names = [...dir.children!.keys()].sort().reverse();
    for (const name of names) stack.push({ prefix: prefix + name, node: dir.children!.get(name)! });
  };
  pushChildren('', tree.root);
  while (stack.length > 0) {
    const { prefix: path, node } = stack.pop()!;
    const inode = node.inode;
    entries++;
    if (node.children !== null) {
      await writer.push(encodeHeader(headerOf(path + '/', inode)));
      pushChildren(path + '/', node);
      continue;
    }
    if (inode.emittedAs !== null) {
      const h = headerOf(path, inode);
      h.type = 'link';
      h.linkname = inode.emittedAs;
      h.size = 0;
      h.devmajor = h.devminor = 0;
      await writer.push(encodeHeader(h));
      continue;
    }
    inode.emittedAs = path;
    await writer.push(encodeHeader(headerOf(path, inode)));
    if (inode.type === 'file' && inode.size > 0) {
      for (let done = 0; done < inode.size; ) {
        const n = Math.min(BATCH, inode.size - done);
        await writer.push(await spool.read(inode.spoolOffset + done, n));
        done += n;
      }
      await writer.push(padding(inode.size));
    }
  }
  await writer.push(END_OF_ARCHIVE);
  await writer.flush();
  return entries;
}
