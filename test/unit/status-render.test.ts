import { expect } from 'chai';
import type { V1Job } from '@kubernetes/client-node';
import { exitCode, fromJob, fromRecord, unknownItem, type ItemStatus } from '../../function/status/item.ts';
import { describeStatus, statusJson } from '../../function/status/render.ts';

const SOURCE = 'redis://redis:6379/0/job-robot:queue';
const T = new Date('2026-06-01T12:00:00Z');

describe('job-robot status: what a record or a Job says', function () {
  it('a record gives its state and fields; its own source wins', function () {
    const s = fromRecord({ id: 'a', state: 'failed', source: 'urn:pinned', job: 'job-robot-1', finished: T.toISOString(), reason: 'BackoffLimitExceeded' }, SOURCE);
    expect(s).to.deep.equal({ id: 'a', source: 'urn:pinned', from: 'record', state: 'failed', final: true, job: 'job-robot-1', finished: T.toISOString(), reason: 'BackoffLimitExceeded' });
  });

  it('accepted and created records are not final; dead-lettered is', function () {
    expect(fromRecord({ id: 'a', state: 'accepted' }, SOURCE)).to.deep.include({ final: false, source: SOURCE });
    expect(fromRecord({ id: 'a', state: 'created' }, SOURCE).final).to.equal(false);
    expect(fromRecord({ id: 'a', state: 'dead-lettered', reason: 'too-large' }, SOURCE).final).to.equal(true);
  });

  it('a finished Job gives its outcome; a running one is created, not final', function () {
    const job: V1Job = {
      metadata: { name: 'job-robot-9', creationTimestamp: new Date(T.getTime() - 60_000) },
      status: { conditions: [{ type: 'Complete', status: 'True', reason: 'CompletionsReached', lastTransitionTime: T }] },
    };
    expect(fromJob(job, 'a', SOURCE, 'jobs')).to.deep.equal({
      id: 'a',
      source: SOURCE,
      from: 'job',
      state: 'succeeded',
      final: true,
      job: 'job-robot-9',
      namespace: 'jobs',
      created: '2026-06-01T11:59:00.000Z',
      finished: '2026-06-01T12:00:00.000Z',
      reason: 'CompletionsReached',
    });
    expect(fromJob({ metadata: { name: 'j' } }, 'a', SOURCE, 'jobs')).to.deep.include({ state: 'created', final: false });
  });
});

describe('job-robot status: exit codes', function () {
  const record = (state: ItemStatus['state'], final: boolean): ItemStatus => ({ id: 'a', source: SOURCE, from: 'record', state, final });
  const cases: Array<[string, ItemStatus, boolean, number]> = [
    ['known, not waiting: 0 whatever the state', record('failed', true), false, 0],
    ['known and not final, not waiting: 0', record('created', false), false, 0],
    ['unknown, not waiting: 4', unknownItem('a', SOURCE, 'jobs'), false, 4],
    ['waited, succeeded: 0', record('succeeded', true), true, 0],
    ['waited, failed: 1', record('failed', true), true, 1],
    ['waited, dead-lettered: 1', record('dead-lettered', true), true, 1],
    ['waited, still created at the deadline: 2', record('created', false), true, 2],
    ['waited, still unknown at the deadline: 2 (the item may not be claimed yet)', unknownItem('a', SOURCE, 'jobs'), true, 2],
  ];
  for (const [name, status, waited, code] of cases) it(name, () => expect(exitCode(status, waited)).to.equal(code));
});

describe('job-robot status: output', function () {
  it('text: the state first, one field a line, where the answer came from', function () {
    const s = fromRecord({ id: 'a', state: 'succeeded', job: 'job-robot-1', accepted: T.toISOString() }, SOURCE);
    expect(describeStatus(s)).to.equal(`a: succeeded\n  job       job-robot-1\n  accepted  ${T.toISOString()}\n  from      the result record in Redis\n`);
  });

  it('text: a message with line breaks stays on its line', function () {
    const s = fromRecord({ id: 'a', state: 'failed', message: 'first\nfake: line\r\nthird' }, SOURCE);
    expect(describeStatus(s)).to.contain('  message   first fake: line third\n');
  });

  it('text: a wait that ran out says so after the status', function () {
    const s = fromRecord({ id: 'a', state: 'created' }, SOURCE);
    expect(describeStatus(s, { seconds: 30, timedOut: true })).to.equal('a: created (not final yet)\n  from      the result record in Redis\ntimed out after 30 s waiting for a final state\n');
    expect(describeStatus(s, { seconds: 30, timedOut: false })).to.not.contain('timed out');
  });

  it('text: unknown names the namespace and the source it looked for', function () {
    expect(describeStatus(unknownItem('a', SOURCE, 'jobs'))).to.equal(`a: unknown: no result record in Redis and no Job in namespace jobs\n  source    ${SOURCE}\n`);
  });

  it('JSON: one line; timedOut only when there was a wait', function () {
    const s = fromRecord({ id: 'a', state: 'created' }, SOURCE);
    const text = statusJson(s);
    expect(text.endsWith('\n') && !text.slice(0, -1).includes('\n')).to.equal(true);
    expect(JSON.parse(text)).to.deep.equal({ id: 'a', source: SOURCE, from: 'record', state: 'created', final: false });
    expect(JSON.parse(statusJson(s, { seconds: 1, timedOut: true }))).to.deep.include({ timedOut: true });
  });
});
