import { expect } from 'chai';
import { InternalError, Misconfigured, PayloadTooLarge, RetryLater, type HttpError } from '../../function/http/errors.ts';
import { kubeFailure, type KubeFailure } from '../../function/kube/api-error.ts';
import { KubeApiError } from '../../function/kube/rest.ts';
import { CREDENTIALS_FIX, explain, failureAnswer, failureClass, isMisconfiguration, isTransient, rbacFix, type FailureClass } from '../../function/kube/failures.ts';
import { CREATE_JOBS, LIST_JOBS, WATCH_JOBS } from '../../function/kube/permissions.ts';

const failure = (code: number, extra: Partial<KubeFailure> = {}): KubeFailure => ({ code, reason: '', message: 'm', ...extra });
const CALL = { needs: [CREATE_JOBS], namespace: 'ns1' };
/** The caller's Retry-After when the API server names none. */
const DEFAULT_AFTER = 10;

describe('kube failures: one class, one answer, decided once', function () {
  type Row = [string, KubeFailure, FailureClass, boolean, new (...a: never[]) => HttpError, number, string, number | undefined];
  const rows: Row[] = [
    // name, failure, class, try again, answer class, status, reason, Retry-After
    ['no answer (network, call deadline)', failure(0, { reason: 'NetworkError' }), 'unreachable', true, RetryLater, 503, 'api-unreachable', DEFAULT_AFTER],
    ['429 throttled', failure(429), 'throttled', true, RetryLater, 429, 'api-throttled', DEFAULT_AFTER],
    ['429 naming its own Retry-After', failure(429, { retryAfterSeconds: 3 }), 'throttled', true, RetryLater, 429, 'api-throttled', 3],
    ['500 internal error (etcd timed out)', failure(500), 'unavailable', true, RetryLater, 503, 'api-unavailable', DEFAULT_AFTER],
    ['502 from a proxy in front', failure(502), 'unavailable', true, RetryLater, 503, 'api-unavailable', DEFAULT_AFTER],
    ['503 naming its own Retry-After', failure(503, { retryAfterSeconds: 7 }), 'unavailable', true, RetryLater, 503, 'api-unavailable', 7],
    ['504 gateway timeout', failure(504), 'unavailable', true, RetryLater, 503, 'api-unavailable', DEFAULT_AFTER],
    ['501 Not Implemented does not pass by waiting', failure(501), 'unexpected', false, InternalError, 500, 'internal', undefined],
    ['505 does not pass by waiting', failure(505), 'unexpected', false, InternalError, 500, 'internal', undefined],
    ['401: the credentials are the function\u2019s own misconfiguration', failure(401), 'unauthorized', false, Misconfigured, 500, 'unauthorized', undefined],
    ['403: missing RBAC', failure(403), 'forbidden', false, Misconfigured, 500, 'forbidden', undefined],
    ['409 Conflict', failure(409, { reason: 'Conflict' }), 'conflict', false, RetryLater, 503, 'api-conflict', DEFAULT_AFTER],
    ['409 without a reason is a conflict, not an existing object', failure(409), 'conflict', false, RetryLater, 503, 'api-conflict', DEFAULT_AFTER],
    ['409 AlreadyExists: the caller decides (a create succeeded before)', failure(409, { reason: 'AlreadyExists' }), 'exists', false, InternalError, 500, 'internal', undefined],
    ['413 too large', failure(413), 'too-large', false, PayloadTooLarge, 413, 'too-large', undefined],
    ['404: the caller decides', failure(404), 'not-found', false, InternalError, 500, 'internal', undefined],
    ['400: the caller decides', failure(400), 'invalid', false, InternalError, 500, 'internal', undefined],
    ['422: the caller decides', failure(422), 'invalid', false, InternalError, 500, 'internal', undefined],
    ['410 Expired', failure(410, { reason: 'Expired' }), 'unexpected', false, InternalError, 500, 'internal', undefined],
    ['418, an answer no one expects', failure(418), 'unexpected', false, InternalError, 500, 'internal', undefined],
  ];

  for (const [name, f, cls, transient, answerClass, status, reason, retryAfter] of rows) {
    it(name, function () {
      expect(failureClass(f)).to.equal(cls);
      expect(isTransient(f)).to.equal(transient);
      expect(isMisconfiguration(f)).to.equal(cls === 'unauthorized' || cls === 'forbidden');
      const answer = failureAnswer(f, CALL, DEFAULT_AFTER);
      expect(answer).to.be.instanceOf(answerClass);
      expect([answer.status, answer.reason]).to.deep.equal([status, reason]);
      expect(answer instanceof RetryLater ? answer.retryAfterSeconds : undefined).to.equal(retryAfter);
    });
  }
});

describe('kube failures: the fix, written once', function () {
  it('403 names each permission the call needs, the namespace and kubectl apply -f config/rbac.yaml', function () {
    expect((failureAnswer(failure(403), CALL, DEFAULT_AFTER) as Misconfigured).fix).to.equal(
      'grant create jobs.batch in namespace ns1: kubectl apply -n ns1 -f config/rbac.yaml',
    );
  });

  it('403 with another way out names it after the grant', function () {
    const call = { needs: [LIST_JOBS, WATCH_JOBS], namespace: 'ns1', orElse: 'set MAX_ACTIVE_JOBS=0' };
    expect(explain(failure(403), call).fix).to.equal('grant list jobs.batch, watch jobs.batch in namespace ns1: kubectl apply -n ns1 -f config/rbac.yaml; or set MAX_ACTIVE_JOBS=0');
  });

  it('401 points at the credentials, not at RBAC', function () {
    expect((failureAnswer(failure(401), CALL, DEFAULT_AFTER) as Misconfigured).fix).to.equal(CREDENTIALS_FIX);
  });

  it('nothing missing by name (a missing ServiceAccount): only the kubectl apply', function () {
    expect(rbacFix('ns1')).to.equal('kubectl apply -n ns1 -f config/rbac.yaml');
  });

  it('failures the operator cannot fix carry no fix', function () {
    for (const code of [0, 429, 500, 409, 413, 418]) expect(explain(failure(code), CALL).fix, String(code)).to.equal(undefined);
  });
});

describe('kube failures: the words', function () {
  it('say what was asked, where, and what the API server said', function () {
    expect(explain(failure(503, { message: 'etcd leader changed' }), CALL).message).to.equal(
      'cannot create jobs.batch in namespace ns1: the API server failed (503): etcd leader changed',
    );
    expect(explain(failure(403, { message: 'User "x" cannot create resource "jobs"' }), CALL).message).to.equal(
      'may not create jobs.batch in namespace ns1: User "x" cannot create resource "jobs"',
    );
  });

  it('an unexpected answer names its code and reason, and no reason leaves no gap', function () {
    expect(explain(failure(410, { reason: 'Expired', message: 'too old' }), CALL).message).to.equal('cannot create jobs.batch in namespace ns1: unexpected answer 410 Expired: too old');
    expect(explain(failure(418), CALL).message).to.equal('cannot create jobs.batch in namespace ns1: unexpected answer 418: m');
  });
});

describe('kube failures: what counts as an answer', function () {
  it('a watch the API server refused carries its status code', function () {
    expect(kubeFailure(Object.assign(new Error('Forbidden'), { statusCode: 403 }))).to.deep.equal({ code: 403, reason: '', message: 'answered 403 Forbidden' });
  });

  it('an error without a status is no answer at all: code 0', function () {
    expect(kubeFailure(new Error('connect ECONNREFUSED'))).to.deep.include({ code: 0, reason: 'NetworkError' });
    expect(kubeFailure(Object.assign(new Error('odd'), { statusCode: '403' }))).to.deep.include({ code: 0 });
  });

  it('a refusal whose body is JSON but no object (null, a number) keeps its code and its own message', function () {
    for (const body of ['null', '42', '"busy"']) {
      expect(kubeFailure(new KubeApiError(503, body, {}, 'POST /jobs'))).to.deep.equal({ code: 503, reason: '', message: 'POST /jobs: HTTP 503' });
    }
  });
});
