/**
 * Bounded concurrency with back-pressure: `run` resolves once the task has started, waiting while
 * `limit` tasks are in flight, so a producer feeding it never gets ahead of the work by more than
 * `limit` tasks.
 */
export class Limiter {
  private readonly limit: number;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly waiting: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  get active(): number {
    return this.inFlight.size;
  }

  /** Starts `task` once a slot is free. The task must handle its own errors; a rejection is a bug and is rethrown by `drain`. */
  async run(task: () => Promise<void>): Promise<void> {
    while (this.inFlight.size >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    const p: Promise<void> = task().finally(() => {
      this.inFlight.delete(p);
      this.waiting.shift()?.();
    });
    this.inFlight.add(p);
  }

  /** Waits for every started task. */
  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }
}
