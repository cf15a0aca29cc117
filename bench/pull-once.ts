// One pull into a store, as its own process, so the pull bench can compare process against
// process with skopeo: `node bench/pull-once.ts REF STORE_DIR [concurrency]`. Prints nothing.
import { BlobStore } from '../src/image/store.ts';
import { pull } from '../src/image/registry/index.ts';

const [ref, dir, conc] = process.argv.slice(2);
if (!ref || !dir) {
  process.stderr.write('usage: pull-once.ts REF STORE_DIR [concurrency]\n');
  process.exit(2);
}
const store = await BlobStore.open(dir);
await pull(ref, { store, insecure: true, concurrency: conc ? Number(conc) : undefined });
