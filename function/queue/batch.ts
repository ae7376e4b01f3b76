/**
 * Gathers calls made within a couple of milliseconds into one: acknowledgements of many items become one
 * Redis round trip (one script call, one socket write) instead of one each.
 */
export class Batcher<T> {
  private readonly run: (items: T[]) => Promise<void>;
  private readonly max: number;
  private readonly delayMs: number;
  private pending: { item: T; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private scheduled = false;

  /** `run` settles a whole batch; at most `max` items go in one call, gathered over `delayMs`. */
  constructor(run: (items: T[]) => Promise<void>, max = 256, delayMs = 2) {
    this.run = run;
    this.max = max;
    this.delayMs = delayMs;
  }

  /** Resolves once the batch holding `item` has been run; rejects if that run failed. */
  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.max) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setTimeout(() => this.flush(), this.delayMs);
      }
    });
  }

  /**
   * Takes the waiting items for a caller that settles them in a call of its own (acks riding
   * along with a claim); `settle` resolves or rejects their callers.
   */
  take(): { items: T[]; settle: (err?: unknown) => void } {
    const batch = this.pending;
    this.pending = [];
    return {
      items: batch.map((b) => b.item),
      settle: (err?: unknown) => batch.forEach((b) => (err === undefined ? b.resolve() : b.reject(err))),
    };
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    this.run(batch.map((b) => b.item)).then(
      () => batch.forEach((b) => b.resolve()),
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    );
  }
}
