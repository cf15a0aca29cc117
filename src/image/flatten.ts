// flatten(image, out): all layers applied bottom to top, written as ONE tar of the final root
// filesystem. One pass over the layers builds an in-memory tree of metadata (contents go to an
// unlinked spool file), then the tree is written out sorted. Details in ./flatten/*.ts.
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { KrError, withContext } from '../util/errors.ts';
import { noProgress, type ProgressSink } from '../util/progress.ts';
import { encodeConfigHeader } from './config-header.ts';
import { openUncompressed } from './layer-stream.ts';
import { readTarStream } from './tar/tar-reader.ts';
import type { Image } from './types.ts';
import { applyLayer } from './flatten/apply.ts';
import { BatchedWriter, emitTree } from './flatten/emit.ts';
import { Spool } from './flatten/spool.ts';
import { RootTree } from './flatten/tree.ts';

export interface FlattenOptions {
  /** Start the tar with the PAX global header carrying the image config (default true). */
  configHeader?: boolean;
  /** End `out` when done (default true), like pipe(). */
  end?: boolean;
  /** Where the unlinked spool file goes (default os.tmpdir()); needs room for all layer contents. */
  tmpDir?: string;
  progress?: ProgressSink;
}

export interface FlattenResult {
  /** Tar entries of the rootfs written (the config header not counted). */
  entries: number;
  /** Bytes written to `out`. */
  bytes: number;
  /** Layer entries dropped because their path climbed out of the root ("../x"). */
  skipped: number;
}

export async function flatten(image: Image, out: Writable, opts: FlattenOptions = {}): Promise<FlattenResult> {
  const progress = opts.progress ?? noProgress;
  const tree = new RootTree();
  const spool = await Spool.create(opts.tmpDir).catch((err) => {
    throw withContext(err, 'flatten: creating the spool file');
  });
  let skipped = 0;
  try {
    for (let i = 0; i < image.layers.length; i++) {
      const layer = image.layers[i];
      const id = layer.descriptor.digest.replace(/^sha256:/, '').slice(0, 12);
      progress({ id, status: 'Extracting', current: 0, total: layer.descriptor.size });
      try {
        const stream = await openUncompressed(layer);
        try {
          // Layers are numbered from 1 so the implicit root (layer 0) counts as lower content.
          skipped += (await applyLayer(tree, spool, readTarStream(stream), i + 1)).skipped;
        } finally {
          stream.destroy();
        }
      } catch (err) {
        throw layerError(err, `layer ${i + 1} (${layer.descriptor.digest})`);
      }
      progress({ id, status: 'Pull complete' });
    }
    await spool.flush();
    const writer = new BatchedWriter(out);
    if (opts.configHeader !== false) await writer.push(encodeConfigHeader(image.config));
    const entries = await emitTree(tree, spool, writer);
    if (opts.end !== false) {
      out.end();
      await finished(out, { readable: false });
    }
    return { entries, bytes: writer.bytes, skipped };
  } catch (err) {
    throw err instanceof KrError ? err : withContext(err, 'flatten');
  } finally {
    await spool.close();
  }
}

/** Decompression failures mean bad layer bytes ('corrupt'); file system failures stay 'io'. */
function layerError(err: unknown, context: string): KrError {
  const code = (err as { code?: unknown })?.code;
  if (!(err instanceof KrError) && typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR_ZSTD') || code.startsWith('ZSTD'))) {
    return new KrError('corrupt', `${context}: ${(err as Error).message}`, { cause: err });
  }
  return withContext(err, context);
}
