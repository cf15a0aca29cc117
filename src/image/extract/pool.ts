// A bounded set of background fs tasks (file metadata, closes), so the reading loop can go on to the
// next entry while the last one is finished off. The first failure is kept and rethrown.
export class TaskPool {
  private readonly limit: number;
  private readonly inflight = new Set<Promise<void>>();
  private failure: { err: unknown } | null = null;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Adds a running task; waits while the pool is full. */
  async add(task: Promise<unknown>): Promise<void> {
    const tracked: Promise<void> = task.then(
      () => {},
      (err: unknown) => {
        this.failure ??= { err };
      },
    ).finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
    while (this.inflight.size >= this.limit) await Promise.race(this.inflight);
    this.throwIfFailed();
  }

  /** Waits for every task; rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    this.throwIfFailed();
  }

  /** Waits for every task, ignoring failures (used when already failing). */
  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled(this.inflight);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.err;
  }
}
