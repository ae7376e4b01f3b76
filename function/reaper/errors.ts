/** A reaper run's API failures, as the HTTP error classes (mapped to a status in http/errors.ts). */
import { InternalError, Misconfigured, RetryLater, type HttpError } from '../http/errors.ts';
import { kubeFailure } from '../kube/api-error.ts';
import type { Permission } from '../kube/access.ts';
import { grantFix } from './access.ts';
import { isTransient } from './retry.ts';

/** Retry-After when the API server names none: the next PingSource tick usually comes sooner. */
const DEFAULT_RETRY_AFTER_SECONDS = 30;

/**
 * Maps a failed list or delete to the error a run ends with: 403 and 401 are the reaper's own
 * misconfiguration (with the fix), transient failures mean come back later, anything else is a bug.
 */
export function runFailure(err: unknown, namespace: string, permission: Permission): HttpError {
  const f = kubeFailure(err);
  const doing = `${permission.verb} Jobs in namespace ${namespace}`;
  if (f.code === 403) return new Misconfigured(`the reaper may not ${doing}: ${f.message}`, grantFix(namespace, [permission]), 'forbidden');
  if (f.code === 401) {
    return new Misconfigured(
      `the API server rejected the reaper's credentials: ${f.message}`,
      'check the ServiceAccount token mounted in the pod (or KUBECONFIG when run locally)',
      'unauthorized',
    );
  }
  if (isTransient(err)) {
    return new RetryLater(`cannot ${doing}: ${f.message}`, 503, f.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS, 'kube-unavailable');
  }
  return new InternalError(`cannot ${doing}: ${f.code} ${f.reason} ${f.message}`.replace(/\s+/g, ' '));
}

export const isForbiddenRun = (err: unknown): err is Misconfigured => err instanceof Misconfigured && err.reason === 'forbidden';
