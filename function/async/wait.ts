/** Waiting, for every part: a pause that shutdown can cut short, and a bound on how long to wait for work. */

/**
 * Resolves after `ms`, or as soon as `signal` aborts (at once when it already has). Never rejects:
 * a loop that pauses checks its own stop condition afterwards.
 */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * `work`'s value, or undefined once `ms` have passed or when `work` rejects. The work itself goes
 * on; a caller that needs its error or its end handles them on `work`. For a deadline shared by
 * several waits, pass `deadline - Date.now()`.
 */
export function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const settle = (value: T | undefined) => {
      clearTimeout(timer);
      resolve(value);
    };
    const timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
    work.then(settle, () => settle(undefined));
  });
}
