import { retryDelay } from '../async/backoff.ts';
import { pause } from '../async/wait.ts';
import { kubeFailure } from '../kube/api-error.ts';

export interface RetryOptions {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 3, baseDelayMs: 200, maxDelayMs: 5000 };

/** Failures worth a second try: the network, throttling, and the API server or etcd being briefly away. */
export function isTransient(err: unknown): boolean {
  const { code } = kubeFailure(err);
  return code === 0 || code === 429 || code === 500 || code === 502 || code === 503 || code === 504;
}

/**
 * Calls `fn`, retrying transient Kubernetes failures with exponential backoff and jitter, waiting at
 * least the server's Retry-After when it sends one (capped). Anything else, or the last failure, is thrown.
 */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = DEFAULT_RETRY): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= options.attempts || !isTransient(err)) throw err;
      const after = kubeFailure(err).retryAfterSeconds;
      await pause(retryDelay(attempt, after === undefined ? undefined : after * 1000, options.baseDelayMs, options.maxDelayMs));
    }
  }
}
