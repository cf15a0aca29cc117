// Runs async work over items with at most `limit` in flight. The first failure aborts the
// shared signal (so in-flight downloads stop early) and is what the caller sees.

export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number, signal: AbortSignal) => Promise<void>,
  outer?: AbortSignal,
): Promise<void> {
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  let next = 0;
  let firstError: { err: unknown } | undefined;
  const worker = async () => {
    while (!firstError && next < items.length) {
      const i = next++;
      try {
        await work(items[i], i, controller.signal);
      } catch (err) {
        if (!firstError) firstError = { err };
        controller.abort(err);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    outer?.removeEventListener('abort', onOuterAbort);
  }
  if (firstError) throw firstError.err;
}
