/** Retry timing for every part: exponential backoff with jitter, and `Retry-After`. Pure functions. */

/**
 * Delay before retry number `attempt` (1-based): the ceiling doubles from `minMs` up to `maxMs`,
 * and the delay is drawn uniformly from the upper half of the ceiling ("equal jitter"), so
 * replicas that failed together do not retry together, and no retry comes sooner than half the
 * ceiling.
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 52);
  const ceiling = Math.min(maxMs, minMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * `Retry-After` in milliseconds from now: delta-seconds or an HTTP-date. Undefined when absent or
 * unreadable; a date in the past is 0.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * How long to wait before the next attempt: at least what the sink asked for with Retry-After,
 * at least the jittered backoff, never more than `maxMs`.
 */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | undefined,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  return Math.min(maxMs, Math.max(retryAfterMs ?? 0, backoffDelay(attempt, minMs, maxMs, random)));
}
