/**
 * What a failed Kubernetes API call means, decided once for every part: its class, whether the
 * same call is worth another try, the HTTP answer a function gives for it, and the fix to print.
 *
 * | class        | API answer                    | try again | HTTP answer                              |
 * |--------------|-------------------------------|-----------|------------------------------------------|
 * | unreachable  | none (network, call deadline) | yes       | 503 api-unreachable, Retry-After         |
 * | throttled    | 429                           | yes       | 429 api-throttled, Retry-After           |
 * | unavailable  | 500, 502, 503, 504            | yes       | 503 api-unavailable, Retry-After         |
 * | conflict     | 409 other than AlreadyExists  | no        | 503 api-conflict, Retry-After            |
 * | unauthorized | 401                           | no        | 500 unauthorized, fix: the credentials   |
 * | forbidden    | 403                           | no        | 500 forbidden, fix: config/rbac.yaml     |
 * | too-large    | 413                           | no        | 413 too-large                            |
 * | exists       | 409 AlreadyExists             | no        | the caller's (a create: success)         |
 * | not-found    | 404                           | no        | the caller's (a read: absent)            |
 * | invalid      | 400, 422                      | no        | the caller's (a create: event or template) |
 * | unexpected   | anything else (410, 501, ...) | no        | 500 internal                             |
 *
 * Retry-After is the API server's when it names one, else the caller's default.
 *
 * Decided here, where the parts used to disagree:
 * - 401 is 500 everywhere (the status endpoint answered 503): the API server does not accept the
 *   function's own credentials, and waiting does not change that; the operator must act, so the
 *   answer is the misconfiguration one, logged at error with the fix.
 * - Only 500, 502, 503 and 504 mean "the API server is briefly away" (the launcher took any 5xx):
 *   a 501 Not Implemented or a 505 does not go away by waiting, so it is unexpected, a 500.
 */
import { InternalError, Misconfigured, PayloadTooLarge, RetryLater, type HttpError } from '../http/errors.ts';
import type { KubeFailure } from './api-error.ts';
import { describePermission, type Permission } from './permissions.ts';

export type FailureClass =
  | 'unreachable'
  | 'throttled'
  | 'unavailable'
  | 'conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'too-large'
  | 'exists'
  | 'not-found'
  | 'invalid'
  | 'unexpected';

export function failureClass(f: KubeFailure): FailureClass {
  switch (f.code) {
    case 0:
      return 'unreachable';
    case 429:
      return 'throttled';
    case 500:
    case 502:
    case 503:
    case 504:
      return 'unavailable';
    case 409:
      return f.reason === 'AlreadyExists' ? 'exists' : 'conflict';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 413:
      return 'too-large';
    case 404:
      return 'not-found';
    case 400:
    case 422:
      return 'invalid';
    default:
      return 'unexpected';
  }
}

/** Whether the same call may succeed if sent again: no answer, throttled, or the API server briefly away. */
export function isTransient(f: KubeFailure): boolean {
  const c = failureClass(f);
  return c === 'unreachable' || c === 'throttled' || c === 'unavailable';
}

/** Whether the failure is the function's own misconfiguration (credentials, RBAC): waiting will not help. */
export function isMisconfiguration(f: KubeFailure): boolean {
  const c = failureClass(f);
  return c === 'unauthorized' || c === 'forbidden';
}

export const CREDENTIALS_FIX = 'check the ServiceAccount token mounted in the pod (or KUBECONFIG when run locally)';

/** The fix for missing permissions (none named: for a missing ServiceAccount or Role), with another way out if there is one. */
export function rbacFix(namespace: string, missing: readonly Permission[] = [], orElse?: string): string {
  const apply = `kubectl apply -n ${namespace} -f config/rbac.yaml`;
  const grant = missing.length ? `grant ${missing.map(describePermission).join(', ')} in namespace ${namespace}: ${apply}` : apply;
  return orElse ? `${grant}; or ${orElse}` : grant;
}

/** The call that failed, for the words of the answer and the fix. */
export interface FailedCall {
  /** What the call needs: names the verb and resource, and is what a 403 lacks. */
  needs: readonly Permission[];
  namespace: string;
  /** Another way out of a 403 than granting (for example "set MAX_ACTIVE_JOBS=0"). */
  orElse?: string;
}

/** What a failure means in words, for a log line or a readiness report, and the fix when the operator must act. */
export function explain(f: KubeFailure, call: FailedCall): { message: string; fix?: string } {
  const doing = `${call.needs.map(describePermission).join(', ')} in namespace ${call.namespace}`;
  switch (failureClass(f)) {
    case 'unreachable':
      return { message: `cannot ${doing}: the API server is unreachable: ${f.message}` };
    case 'throttled':
      return { message: `cannot ${doing}: the API server is throttling: ${f.message}` };
    case 'unavailable':
      return { message: `cannot ${doing}: the API server failed (${f.code}): ${f.message}` };
    case 'conflict':
      return { message: `cannot ${doing}: conflict: ${f.message}` };
    case 'unauthorized':
      return { message: `cannot ${doing}: the API server rejected the credentials: ${f.message}`, fix: CREDENTIALS_FIX };
    case 'forbidden':
      return { message: `may not ${doing}: ${f.message}`, fix: rbacFix(call.namespace, call.needs, call.orElse) };
    case 'too-large':
      return { message: `cannot ${doing}: the API server refused it as too large: ${f.message}` };
    default:
      return { message: `cannot ${doing}: unexpected answer ${[f.code, f.reason].filter(Boolean).join(' ')}: ${f.message}` };
  }
}

/**
 * The HTTP answer for a failed call, as the typed error the HTTP edge maps to its status (see the
 * table above); `retryAfterSeconds` when the API server names no time.
 */
export function failureAnswer(f: KubeFailure, call: FailedCall, retryAfterSeconds: number): HttpError {
  const { message, fix = '' } = explain(f, call);
  const after = f.retryAfterSeconds ?? retryAfterSeconds;
  switch (failureClass(f)) {
    case 'unreachable':
      return new RetryLater(message, 503, after, 'api-unreachable');
    case 'throttled':
      return new RetryLater(message, 429, after, 'api-throttled');
    case 'unavailable':
      return new RetryLater(message, 503, after, 'api-unavailable');
    case 'conflict':
      return new RetryLater(message, 503, after, 'api-conflict');
    case 'unauthorized':
      return new Misconfigured(message, fix, 'unauthorized');
    case 'forbidden':
      return new Misconfigured(message, fix, 'forbidden');
    case 'too-large':
      return new PayloadTooLarge(message);
    default:
      return new InternalError(message);
  }
}
