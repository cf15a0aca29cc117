// One error convention for the whole library: a sentinel kind plus a one-line message that
// names what was wrong. CLIs print `message` alone; krd maps `kind` to an HTTP status.

export type ErrorKind =
  | 'invalid' // bad input from the caller (a malformed reference, a bad flag value)
  | 'not-found' // the thing named does not exist (image, blob, key, file)
  | 'unauthorized' // credentials missing or refused
  | 'denied' // authenticated but not allowed
  | 'conflict' // already exists / in use
  | 'corrupt' // data does not match what it claims (digest mismatch, bad archive, bad signature)
  | 'untrusted' // validly signed, but by nobody the caller trusts
  | 'unavailable' // a peer failed or could not be reached
  | 'io'; // local storage failed (full disk, permissions)

export class KrError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'KrError';
  }
}

export function isKrError(err: unknown, kind?: ErrorKind): err is KrError {
  return err instanceof KrError && (kind === undefined || err.kind === kind);
}

/** Wraps an unknown failure with context, keeping a KrError's kind. */
export function withContext(err: unknown, context: string): KrError {
  if (err instanceof KrError) return new KrError(err.kind, `${context}: ${err.message}`, { cause: err });
  const e = err as NodeJS.ErrnoException;
  if (e && (e.code === 'ENOSPC' || e.code === 'EDQUOT')) return new KrError('io', `${context}: no space left on device`, { cause: err });
  if (e && e.code === 'ENOENT') return new KrError('not-found', `${context}: ${e.path ?? 'file'} does not exist`, { cause: err });
  if (e && (e.code === 'EACCES' || e.code === 'EPERM')) return new KrError('io', `${context}: permission denied${e.path ? ` (${e.path})` : ''}`, { cause: err });
  const msg = e && typeof e.message === 'string' ? e.message : String(err);
  return new KrError('io', `${context}: ${msg}`, { cause: err });
}
