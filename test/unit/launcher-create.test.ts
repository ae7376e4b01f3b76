import { expect } from 'chai';
import { InvalidEvent, Misconfigured, PayloadTooLarge, RetryLater, InternalError } from '../../function/http/errors.ts';
import { wantsJson } from '../../function/launcher/app.ts';
import { createFailure, nameTaken } from '../../function/launcher/create.ts';
import { jobState, isActive } from '../../function/launcher/state.ts';

describe('launcher create: every API answer maps to one HTTP class', function () {
  const map = (code: number, extra: Record<string, unknown> = {}) => createFailure({ code, reason: '', message: 'm', ...extra }, 'ns1', 10);

  it('table', function () {
    const rows: Array<[ReturnType<typeof map>, new (...a: never[]) => unknown, number, string]> = [
      [map(401), Misconfigured, 500, 'unauthorized'],
      [map(403), Misconfigured, 500, 'forbidden'],
      [map(404), Misconfigured, 500, 'namespace-missing'],
      [map(409, { reason: 'Conflict' }), RetryLater, 503, 'api-conflict'],
      [map(413), PayloadTooLarge, 413, 'too-large'],
      [map(400), Misconfigured, 500, 'template-rejected'],
      [map(422, { causes: [{ field: 'spec.template.spec.containers[0].image' }] }), Misconfigured, 500, 'template-rejected'],
      [map(422), Misconfigured, 500, 'template-rejected'],
      [map(422, { causes: [{ field: 'metadata.annotations' }, { field: 'spec.template.spec.containers[1].env[3].value' }] }), InvalidEvent, 400, 'invalid-job'],
      [map(422, { causes: [{ field: 'metadata.annotations' }, { field: 'spec.backoffLimit' }] }), Misconfigured, 500, 'template-rejected'],
      [map(429), RetryLater, 429, 'api-throttled'],
      [map(500), RetryLater, 503, 'api-unavailable'],
      [map(504), RetryLater, 503, 'api-unavailable'],
      [map(501), InternalError, 500, 'internal'],
      [map(0), RetryLater, 503, 'api-unreachable'],
      [map(418), InternalError, 500, 'internal'],
    ];
    for (const [err, cls, status, reason] of rows) {
      expect(err, reason).to.be.instanceOf(cls);
      expect([err.status, err.reason], reason).to.deep.equal([status, reason]);
    }
  });

  it('Retry-After: the API server\'s when it names one, else the configured one', function () {
    expect((map(429, { retryAfterSeconds: 3 }) as RetryLater).retryAfterSeconds).to.equal(3);
    expect((map(503) as RetryLater).retryAfterSeconds).to.equal(10);
  });

  it('a 403 names the fix: kubectl apply -f config/rbac.yaml in the namespace', function () {
    expect((map(403) as Misconfigured).fix).to.equal('grant create jobs.batch in namespace ns1: kubectl apply -n ns1 -f config/rbac.yaml');
  });
});

describe('launcher create: a Job name held by a Job this launcher does not own', function () {
  const held = (labels: Record<string, string>) => nameTaken({ metadata: { name: 'job-robot-abc', labels } }, 'ns1', 'job-robot-');

  it('is a 500 name-taken naming who holds it', function () {
    const rows: Array<[Record<string, string>, string]> = [
      [{ 'app.kubernetes.io/managed-by': 'job-robot', 'app.kubernetes.io/instance': 'blue' }, 'job-robot instance blue'],
      [{ 'app.kubernetes.io/managed-by': 'job-robot' }, 'the job-robot without INSTANCE'],
      [{ 'app.kubernetes.io/managed-by': 'helm', 'app.kubernetes.io/instance': 'blue' }, 'a Job job-robot does not manage'],
      [{}, 'a Job job-robot does not manage'],
    ];
    for (const [labels, holder] of rows) {
      const err = held(labels);
      expect(err, holder).to.be.instanceOf(Misconfigured);
      expect([err.status, err.reason], holder).to.deep.equal([500, 'name-taken']);
      expect(err.message, holder).to.equal(
        `Job job-robot-abc already exists and belongs to ${holder}, not to this launcher: the same event reached another job-robot with the same JOB_NAME_PREFIX`,
      );
    }
  });

  it('the fix: a JOB_NAME_PREFIX per job-robot in the namespace, one launcher per queue', function () {
    expect(held({}).fix).to.equal(
      "give each job-robot in namespace ns1 its own JOB_NAME_PREFIX (this one has job-robot-), and route each queue's events to one launcher only",
    );
  });
});

describe('launcher app: a JSON body only when asked for explicitly', function () {
  it('table', function () {
    const rows: Array<[string | undefined, boolean]> = [
      [undefined, false],
      ['*/*', false],
      ['application/*', false],
      ['application/json', true],
      ['text/html, application/json;q=0.9', true],
      ['application/json;q=0', false],
      ['Application/JSON; charset=utf-8', true],
      ['application/cloudevents+json', false],
    ];
    for (const [accept, want] of rows) expect(wantsJson(accept), String(accept)).to.equal(want);
  });
});

describe('launcher state: from the Job\'s terminal condition', function () {
  const job = (conditions: Array<{ type: string; status: string }>, deleting = false) => ({
    metadata: deleting ? { deletionTimestamp: new Date() } : {},
    status: { conditions },
  });
  it('table', function () {
    expect(jobState(job([]) as never)).to.equal('running');
    expect(jobState(job([{ type: 'SuccessCriteriaMet', status: 'True' }]) as never)).to.equal('running');
    expect(jobState(job([{ type: 'Complete', status: 'True' }]) as never)).to.equal('succeeded');
    expect(jobState(job([{ type: 'Failed', status: 'True' }]) as never)).to.equal('failed');
    expect(jobState(job([{ type: 'Failed', status: 'False' }]) as never)).to.equal('running');
    expect(isActive(job([]) as never)).to.equal(true);
    expect(isActive(job([], true) as never)).to.equal(false);
    expect(isActive(job([{ type: 'Complete', status: 'True' }]) as never)).to.equal(false);
  });
});
