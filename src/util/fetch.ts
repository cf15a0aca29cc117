// Opening what `bali run` runs: a path, a file:// URL or an http(s):// URL. Downloads are
// streamed straight into verification and extraction (no temp file); the status code and
// the announced size are checked, so a 404 or a cut connection is one clear line.
import fs from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { KrError, withContext } from './errors.ts';
import type { ProgressSink } from './progress.ts';

export interface Opened {
  stream: Readable;
  /** Size in bytes when known (file size or Content-Length). */
  size?: number;
}

export async function openSource(source: string, progress?: ProgressSink): Promise<Opened> {
  if (/^https?:\/\//i.test(source)) {
    // Loaded only for downloads: http and https take ~7 ms to load, on every bali run's start.
    const [http, https] = await Promise.all([import('node:http'), import('node:https')]);
    return download(source, progress, 0, { http: http.get, https: https.get });
  }
  const file = source.startsWith('file://') ? fileURLToPath(source) : source;
  try {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    return { stream: fs.createReadStream('', { fd, highWaterMark: 1 << 20 }), size };
  } catch (err) {
    throw withContext(err, `cannot open ${file}`);
  }
}

type Getters = { http: typeof import('node:http').get; https: typeof import('node:https').get };

function download(url: string, progress: ProgressSink | undefined, redirects: number, getters: Getters): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? getters.https : getters.http;
    const req = get(url, { headers: { 'user-agent': 'bali' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location && redirects < 5) {
        res.resume();
        resolve(download(new URL(res.headers.location, url).toString(), progress, redirects + 1, getters));
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new KrError(status === 404 ? 'not-found' : 'unavailable', `download ${url}: HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`));
        return;
      }
      const length = res.headers['content-length'] ? Number(res.headers['content-length']) : undefined;
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        progress?.({ id: 'download', status: 'Downloading', current: got, total: length });
      });
      res.on('end', () => {
        if (length !== undefined && got !== length) out.destroy(new KrError('corrupt', `download ${url}: truncated (got ${got} of ${length} bytes)`));
      });
      res.on('aborted', () => out.destroy(new KrError('corrupt', `download ${url}: connection closed after ${got} bytes`)));
      res.on('error', (err) => out.destroy(new KrError('corrupt', `download ${url}: ${err.message}`)));
      res.pipe(out);
      resolve({ stream: out, size: length });
    });
    req.on('error', (err) => reject(new KrError('unavailable', `download ${url}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
  });
}
