/** A reaper run's API failures, as the HTTP error classes (kube/failures.ts decides which). */
import { Misconfigured, type HttpError } from '../http/errors.ts';
import { kubeFailure } from '../kube/api-error.ts';
import { failureAnswer } from '../kube/failures.ts';
import type { Permission } from '../kube/permissions.ts';

/** Retry-After when the API server names none: the next PingSource tick usually comes sooner. */
const DEFAULT_RETRY_AFTER_SECONDS = 30;

/** The error a run ends with when a list or delete fails as a whole. */
export function runFailure(err: unknown, namespace: string, permission: Permission): HttpError {
  return failureAnswer(kubeFailure(err), { needs: [permission], namespace }, DEFAULT_RETRY_AFTER_SECONDS);
}

export const isForbiddenRun = (err: unknown): err is Misconfigured => err instanceof Misconfigured && err.reason === 'forbidden';
