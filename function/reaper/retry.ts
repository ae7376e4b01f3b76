import { retryDelay } from '../async/backoff.ts';
import { pause } from '../async/wait.ts';
import { kubeFailure } from '../kube/api-error.ts';
import { isTransient } from '../kube/failures.ts';

export interface RetryOptions {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 3, baseDelayMs: 200, maxDelayMs: 5000 };

/**
 * Calls `fn`, retrying transient Kubernetes failures (kube/failures.ts) with exponential backoff and jitter, waiting at
 * least the server's Retry-After when it sends one (capped). Anything else, or the last failure, is thrown.
 */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = DEFAULT_RETRY): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const f = kubeFailure(err);
      if (attempt >= options.attempts || !isTransient(f)) throw err;
      const after = f.retryAfterSeconds;
      await pause(retryDelay(attempt, after === undefined ? undefined : after * 1000, options.baseDelayMs, options.maxDelayMs));
    }
  }
}
