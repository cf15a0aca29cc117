// KrError kinds → HTTP status, and docker's error body {"message": "..."}.
import { KrError } from '../util/errors.ts';

const STATUS: Record<KrError['kind'], number> = {
  invalid: 400,
  'not-found': 404,
  unauthorized: 401,
  denied: 403,
  conflict: 409,
  corrupt: 400,
  untrusted: 403,
  unavailable: 502,
  io: 500,
};

export function statusOf(err: unknown): number {
  return err instanceof KrError ? STATUS[err.kind] : 500;
}

export function messageOf(err: unknown): string {
  if (err instanceof Error && err.message) return err.message;
  return String(err);
}

/** docker's JSON-stream error line, for failures after a 200 was already sent. */
export function streamError(err: unknown): string {
  const message = messageOf(err);
  return JSON.stringify({ errorDetail: { message }, error: message }) + '\r\n';
}
