import { expect } from 'chai';
import type { V1Job } from '@kubernetes/client-node';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION, INSTANCE_LABEL, MANAGED_BY_LABEL } from '../../function/kube/labels.ts';
import { decide, DELETED_REASON, type Decision } from '../../function/results/decide.ts';
import type { Change, Watched } from '../../function/results/job-event.ts';

const CREATED = '2026-11-28T12:00:00Z';
const ENDED = '2026-11-28T12:05:00Z';

type Condition = { type: string; status?: string; reason?: string; message?: string; lastTransitionTime?: string };

/** A Job as the API server sends it (times as RFC 3339 strings), with job-robot's labels and annotations unless told otherwise. */
function job(opts: { conditions?: Condition[]; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string; completionTime?: string } = {}): Watched {
  const object = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: 'job-robot-0123abcd',
      namespace: 'jobs',
      uid: '6f1c2a3e-0000-4000-8000-000000000001',
      creationTimestamp: CREATED,
      labels: opts.labels ?? { [MANAGED_BY_LABEL]: 'job-robot' },
      annotations: opts.annotations ?? { [EVENT_ID_ANNOTATION]: 'item-1', [EVENT_SOURCE_ANNOTATION]: '/queue/a' },
      ...(opts.deletionTimestamp ? { deletionTimestamp: opts.deletionTimestamp } : {}),
    },
    status: {
      conditions: (opts.conditions ?? []).map((c) => ({ status: 'True', lastTransitionTime: ENDED, ...c })),
      ...(opts.completionTime ? { completionTime: opts.completionTime } : {}),
    },
  };
  return { kind: 'job', job: object as unknown as V1Job };
}

const COMPLETE = [
  { type: 'SuccessCriteriaMet', reason: 'CompletionsReached' },
  { type: 'Complete', reason: 'CompletionsReached' },
];
const BACKOFF = [
  { type: 'FailureTarget', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
  { type: 'Failed', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
];
const DEADLINE = [
  { type: 'FailureTarget', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' },
  { type: 'Failed', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' },
];

/** The decision, with Dates as ISO strings, for a compact comparison. */
function summary(d: Decision): Record<string, unknown> {
  if (d.action === 'ignore') return { ignore: d.reason };
  const u = d.update;
  return {
    id: u.id,
    source: u.source,
    job: u.job,
    state: u.state,
    created: u.created?.toISOString(),
    finished: u.finished?.toISOString(),
    reason: u.reason,
    message: u.message,
    reply: d.reply,
  };
}

const recorded = (state: string, more: Record<string, unknown> = {}) => ({
  id: 'item-1',
  source: '/queue/a',
  job: 'job-robot-0123abcd',
  state,
  created: '2026-11-28T12:00:00.000Z',
  finished: undefined,
  reason: undefined,
  message: undefined,
  reply: false,
  ...more,
});

describe('results: what one Job event means for its item (decide)', function () {
  const cases: Array<[string, Change, Watched, string | undefined, Record<string, unknown>]> = [
    ['running Job added: created, no reply', 'add', job(), undefined, recorded('created')],
    ['running Job updated: created, no reply', 'update', job({ conditions: [{ type: 'Suspended', status: 'False', reason: 'JobResumed' }] }), undefined, recorded('created')],
    [
      'Complete: succeeded with the condition\'s reason and time, reply',
      'update',
      job({ conditions: COMPLETE, completionTime: ENDED }),
      undefined,
      recorded('succeeded', { finished: '2026-11-28T12:05:00.000Z', reason: 'CompletionsReached', reply: true }),
    ],
    [
      'Complete without a reason: succeeded, reason Completed',
      'add',
      job({ conditions: [{ type: 'Complete' }] }),
      undefined,
      recorded('succeeded', { finished: '2026-11-28T12:05:00.000Z', reason: 'Completed', reply: true }),
    ],
    [
      'Failed with BackoffLimitExceeded: failed with reason and message, reply',
      'update',
      job({ conditions: BACKOFF }),
      undefined,
      recorded('failed', { finished: '2026-11-28T12:05:00.000Z', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', reply: true }),
    ],
    [
      'Failed with DeadlineExceeded: failed, reply',
      'update',
      job({ conditions: DEADLINE }),
      undefined,
      recorded('failed', { finished: '2026-11-28T12:05:00.000Z', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline', reply: true }),
    ],
    ['SuccessCriteriaMet alone (pods still terminating): still created', 'update', job({ conditions: [COMPLETE[0]!] }), undefined, recorded('created')],
    ['FailureTarget alone (pods still terminating): still created', 'update', job({ conditions: [BACKOFF[0]!] }), undefined, recorded('created')],
    ['a Complete condition that is False: still created', 'update', job({ conditions: [{ type: 'Complete', status: 'False' }] }), undefined, recorded('created')],
    [
      'Failed and Complete both True: failed wins',
      'update',
      job({ conditions: [...COMPLETE, ...BACKOFF] }),
      undefined,
      recorded('failed', { finished: '2026-11-28T12:05:00.000Z', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', reply: true }),
    ],
    [
      'a finished Job deleted: its final state, no reply (announced when it finished)',
      'delete',
      job({ conditions: COMPLETE }),
      undefined,
      recorded('succeeded', { finished: '2026-11-28T12:05:00.000Z', reason: 'CompletionsReached' }),
    ],
    [
      'a failed Job deleted: failed as it ended, not Deleted',
      'delete',
      job({ conditions: BACKOFF }),
      undefined,
      recorded('failed', { finished: '2026-11-28T12:05:00.000Z', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }),
    ],
    [
      'an unfinished Job deleted: failed, reason Deleted, finished at its deletionTimestamp, no reply',
      'delete',
      job({ deletionTimestamp: '2026-11-28T12:07:00Z', conditions: [BACKOFF[0]!] }),
      undefined,
      recorded('failed', { finished: '2026-11-28T12:07:00.000Z', reason: DELETED_REASON, message: 'the Job job-robot-0123abcd was deleted before it finished' }),
    ],
    [
      'an unfinished Job deleted without a deletionTimestamp: failed, Deleted, no finish time',
      'delete',
      job(),
      undefined,
      recorded('failed', { reason: DELETED_REASON, message: 'the Job job-robot-0123abcd was deleted before it finished' }),
    ],
    ['not a Job (a Pod)', 'add', { kind: 'other', what: 'v1/Pod' }, undefined, { ignore: 'not-a-job' }],
    ['not job-robot\'s: no managed-by label', 'update', job({ labels: {} }), undefined, { ignore: 'not-owned' }],
    ['not job-robot\'s: managed by someone else', 'update', job({ labels: { [MANAGED_BY_LABEL]: 'helm' } }), undefined, { ignore: 'not-owned' }],
    ['another instance\'s Job, this one without INSTANCE', 'update', job({ labels: { [MANAGED_BY_LABEL]: 'job-robot', [INSTANCE_LABEL]: 'blue' } }), undefined, { ignore: 'other-instance' }],
    ['another instance\'s Job, this one is green', 'update', job({ labels: { [MANAGED_BY_LABEL]: 'job-robot', [INSTANCE_LABEL]: 'blue' } }), 'green', { ignore: 'other-instance' }],
    ['the unnamed job-robot\'s Job, this one is green', 'update', job(), 'green', { ignore: 'other-instance' }],
    [
      'this instance\'s Job (green)',
      'add',
      job({ labels: { [MANAGED_BY_LABEL]: 'job-robot', [INSTANCE_LABEL]: 'green' } }),
      'green',
      recorded('created'),
    ],
    ['no event annotations', 'update', job({ annotations: {}, conditions: COMPLETE }), undefined, { ignore: 'no-event' }],
    ['an event id without its source', 'update', job({ annotations: { [EVENT_ID_ANNOTATION]: 'item-1' } }), undefined, { ignore: 'no-event' }],
    ['an empty event id', 'update', job({ annotations: { [EVENT_ID_ANNOTATION]: '', [EVENT_SOURCE_ANNOTATION]: '/queue/a' } }), undefined, { ignore: 'no-event' }],
  ];
  for (const [name, change, watched, instance, want] of cases) {
    it(name, function () {
      expect(summary(decide(change, watched, instance))).to.deep.equal(want);
    });
  }

  it('a recording names the Job\'s uid and namespace, for the outcome event', function () {
    const d = decide('update', job({ conditions: COMPLETE }), undefined);
    expect(d).to.include({ action: 'record', uid: '6f1c2a3e-0000-4000-8000-000000000001', namespace: 'jobs' });
  });

  it('an ignore says why in words, naming the instance', function () {
    const d = decide('update', job({ labels: { [MANAGED_BY_LABEL]: 'job-robot', [INSTANCE_LABEL]: 'blue' } }), 'green');
    expect(d.action === 'ignore' && d.detail).to.equal('the Job belongs to job-robot instance blue, not green');
  });
});
