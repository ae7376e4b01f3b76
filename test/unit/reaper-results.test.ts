import { expect } from 'chai';
import type { V1Job } from '@kubernetes/client-node';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION } from '../../function/kube/labels.ts';
import { MAX_MESSAGE_CHARS, MAX_REASON_CHARS } from '../../function/queue/results.ts';
import { describe as describeRun, describeResults } from '../../function/reaper/cli.ts';
import { finishedOutcome, KEEP_REASONS, Triage, type Policy } from '../../function/reaper/policy.ts';
import { resultOf } from '../../function/reaper/results.ts';
import { SummaryBuilder } from '../../function/reaper/summary.ts';

const H = 3_600_000;
const NOW = Date.parse('2026-06-01T12:00:00Z');
const POLICY: Policy = { succeeded: { maxAgeMs: H, keep: 0 }, failed: { maxAgeMs: H, keep: 0 } };

function failedJob(annotations: Record<string, string> | undefined, condition: { reason?: string; message?: string } = {}): V1Job {
  return {
    metadata: { name: 'job-1', uid: 'uid-1', creationTimestamp: new Date(NOW - 3 * H), ...(annotations ? { annotations } : {}) },
    spec: { template: {} },
    status: { conditions: [{ type: 'Failed', status: 'True', lastTransitionTime: new Date(NOW - 2 * H), ...condition }] },
  };
}
const EVENT = { [EVENT_ID_ANNOTATION]: 'item-1', [EVENT_SOURCE_ANNOTATION]: 'redis://r:6379/0/q' };

describe('reaper results: what a finished Job records', function () {
  it('an expired Job’s delete decision carries its event (jobEvent) and its outcome', function () {
    const [d] = new Triage(POLICY, NOW).offer(failedJob(EVENT, { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }));
    expect(d!.action).to.equal('delete');
    if (d!.action !== 'delete') return;
    expect(d.job.event).to.deep.equal({ id: 'item-1', source: 'redis://r:6379/0/q' });
    expect(d.job.outcome).to.deep.include({ state: 'failed', job: 'job-1', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' });
  });

  it('a Job with only one of the two annotations has no event and no outcome to record', function () {
    const [d] = new Triage(POLICY, NOW).offer(failedJob({ [EVENT_ID_ANNOTATION]: 'item-1' }));
    expect(d!.action === 'delete' && (d.job.event ?? d.job.outcome)).to.equal(undefined);
  });

  it('a condition’s reason and message longer than a record keeps are cut before they are held', function () {
    const o = finishedOutcome(failedJob(EVENT, { reason: 'R'.repeat(10_000), message: 'm'.repeat(100_000) }), 'failed');
    expect(o.reason!.length).to.equal(MAX_REASON_CHARS);
    expect(o.message!.length).to.equal(MAX_MESSAGE_CHARS);
  });

  it('a Complete condition without a reason records Completed', function () {
    const job: V1Job = { metadata: { name: 'ok' }, status: { conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: new Date(NOW) }] } };
    expect(finishedOutcome(job, 'succeeded')).to.deep.include({ state: 'succeeded', reason: 'Completed' });
  });

  it('the record: the event’s id and source, the Job’s name, creation and finish times, reason and message', function () {
    const job = failedJob(EVENT, { reason: 'DeadlineExceeded', message: 'too slow' });
    const update = resultOf({ id: 'item-1', source: 'redis://r:6379/0/q' }, finishedOutcome(job, 'failed'));
    expect(update).to.deep.equal({
      id: 'item-1',
      state: 'failed',
      source: 'redis://r:6379/0/q',
      job: 'job-1',
      created: new Date(NOW - 3 * H),
      finished: new Date(NOW - 2 * H),
      reason: 'DeadlineExceeded',
      message: 'too slow',
    });
  });

  it('result-unrecorded is a keep reason, so every examined Job still counts under exactly one', function () {
    expect(KEEP_REASONS).to.include('result-unrecorded');
    const s = new SummaryBuilder({ namespace: 'n', selector: 's', dryRun: false, now: new Date(NOW) }).build(0);
    expect(s.kept['result-unrecorded']).to.equal(0);
  });
});

describe('reaper results: the summary', function () {
  const base = { namespace: 'jobs', selector: 'app.kubernetes.io/managed-by=job-robot', now: new Date(NOW) };

  it('without Redis the summary has no results section', function () {
    const b = new SummaryBuilder({ ...base, dryRun: false });
    b.resultRecorded('failed');
    expect(b.build(0)).to.not.have.property('results');
  });

  it('with Redis it counts what was recorded, by state, and the Jobs with nothing to record', function () {
    const b = new SummaryBuilder({ ...base, dryRun: false, results: true });
    b.resultRecorded('failed');
    b.resultRecorded('failed');
    b.resultRecorded('succeeded');
    b.resultWithoutEvent();
    b.resultOfOtherSource();
    b.resultsUnavailable();
    expect(b.build(0).results).to.deep.equal({ recorded: { succeeded: 1, failed: 2 }, withoutEvent: 1, otherSource: 1, unavailable: true });
  });

  it('the text says what was recorded and what could not be', function () {
    const b = new SummaryBuilder({ ...base, dryRun: false, results: true });
    b.resultRecorded('succeeded');
    b.resultWithoutEvent();
    expect(describeRun(b.build(12))).to.contain('results: recorded 1 (1 succeeded, 0 failed); nothing to record for 1 without event annotations\n');
    b.resultsUnavailable();
    expect(describeResults(b.build(0).results!, false)).to.match(/Redis did not answer or refused: Jobs whose result is not final were kept$/);
  });

  it('a dry run says it recorded nothing', function () {
    const s = new SummaryBuilder({ ...base, dryRun: true, results: true }).build(0);
    expect(describeResults(s.results!, true)).to.equal('results: dry run, recorded nothing');
  });

  it('without Redis the text has no results line', function () {
    expect(describeRun(new SummaryBuilder({ ...base, dryRun: false }).build(0))).to.not.contain('results:');
  });
});
