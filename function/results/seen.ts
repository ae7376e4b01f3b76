/**
 * Ids this process has already recorded as `created` (or past it): a running Job sends an update
 * for each change of its status, and each would otherwise cost a Redis script call that changes
 * nothing. Bounded: the oldest ids are forgotten first, so memory depends on `capacity`, not on
 * traffic. Forgetting only costs a redundant write; final states are never skipped.
 */
export class SeenCreated {
  private readonly ids = new Set<string>();
  private readonly capacity: number;

  constructor(capacity = 10_000) {
    this.capacity = capacity;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    if (this.ids.has(id)) return;
    if (this.ids.size >= this.capacity) this.ids.delete(this.ids.values().next().value!);
    this.ids.add(id);
  }

  get size(): number {
    return this.ids.size;
  }
}
