import { expect } from 'chai';
import type { V1Job, V1JobCondition } from '@kubernetes/client-node';
import { NewestKept, finishState, isExpired, newer, type Decision, type FinishedJob, type Policy } from '../../function/reaper/policy.ts';
import { decide } from '../helpers/decide.ts';

const H = 3_600_000;
const NOW = Date.parse('2026-06-01T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms);

type Shape = {
  name?: string;
  complete?: Date;
  failed?: Date;
  suspend?: boolean;
  deleting?: boolean;
  conditions?: V1JobCondition[];
  completionTime?: Date;
};

let counter = 0;
function job(shape: Shape = {}): V1Job {
  const name = shape.name ?? `job-${++counter}`;
  const conditions: V1JobCondition[] = [...(shape.conditions ?? [])];
  if (shape.complete) conditions.push({ type: 'Complete', status: 'True', lastTransitionTime: shape.complete });
  if (shape.failed) conditions.push({ type: 'Failed', status: 'True', lastTransitionTime: shape.failed });
  return {
    metadata: { name, uid: `uid-${name}`, ...(shape.deleting ? { deletionTimestamp: ago(1000) } : {}) },
    spec: { template: {}, ...(shape.suspend !== undefined ? { suspend: shape.suspend } : {}) },
    status: { conditions, ...(shape.completionTime ? { completionTime: shape.completionTime } : {}) },
  };
}

const policy = (s: Partial<Policy['succeeded']> = {}, f: Partial<Policy['failed']> = {}): Policy => ({
  succeeded: { maxAgeMs: H, keep: 0, ...s },
  failed: { maxAgeMs: 24 * H, keep: 5, ...f },
});

/** name → "delete" or "keep:<reason>" */
function outcome(decisions: Decision[]): Record<string, string> {
  return Object.fromEntries(decisions.map((d) => [d.job.name, d.action === 'delete' ? 'delete' : `keep:${d.reason}`]));
}

describe('reaper policy: whether a Job has finished, as what and when', function () {
  const cases: Array<[string, V1Job, ReturnType<typeof finishState>]> = [
    ['no status at all is running', { metadata: { name: 'bare' } }, { state: 'running' }],
    ['no conditions is running', job(), { state: 'running' }],
    ['spec.suspend without a terminal condition is suspended', job({ suspend: true }), { state: 'suspended' }],
    ['suspend: false is running', job({ suspend: false }), { state: 'running' }],
    ['Complete=True is succeeded, finished at its lastTransitionTime', job({ complete: ago(2 * H) }), { state: 'finished', class: 'succeeded', finishedAt: NOW - 2 * H }],
    ['Failed=True is failed, finished at its lastTransitionTime', job({ failed: ago(3 * H) }), { state: 'finished', class: 'failed', finishedAt: NOW - 3 * H }],
    [
      'the Complete condition decides the finish time, not completionTime',
      job({ complete: ago(2 * H), completionTime: ago(9 * H) }),
      { state: 'finished', class: 'succeeded', finishedAt: NOW - 2 * H },
    ],
    [
      'Complete=False is not finished',
      job({ conditions: [{ type: 'Complete', status: 'False', lastTransitionTime: ago(H) }] }),
      { state: 'running' },
    ],
    [
      'FailureTarget without Failed is still running (pods terminating)',
      job({ conditions: [{ type: 'FailureTarget', status: 'True', lastTransitionTime: ago(H) }] }),
      { state: 'running' },
    ],
    [
      'SuccessCriteriaMet without Complete is still running',
      job({ conditions: [{ type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: ago(H) }] }),
      { state: 'running' },
    ],
    [
      'a Suspended=True condition while spec.suspend is false is running (just resumed)',
      job({ suspend: false, conditions: [{ type: 'Suspended', status: 'True', lastTransitionTime: ago(H) }] }),
      { state: 'running' },
    ],
    [
      'a finished Job with spec.suspend still set is finished: the controller never resumes it',
      job({ suspend: true, complete: ago(2 * H) }),
      { state: 'finished', class: 'succeeded', finishedAt: NOW - 2 * H },
    ],
    ['being deleted wins over finished', job({ complete: ago(5 * H), deleting: true }), { state: 'deleting' }],
    ['being deleted wins over running', job({ deleting: true }), { state: 'deleting' }],
    ['both Complete and Failed True reads as failed (the longer retention)', job({ complete: ago(2 * H), failed: ago(2 * H) }), { state: 'finished', class: 'failed', finishedAt: NOW - 2 * H }],
    [
      'Complete without lastTransitionTime falls back to completionTime',
      job({ conditions: [{ type: 'Complete', status: 'True' }], completionTime: ago(4 * H) }),
      { state: 'finished', class: 'succeeded', finishedAt: NOW - 4 * H },
    ],
    ['Failed without lastTransitionTime has no finish time (failed Jobs have no completionTime)', job({ conditions: [{ type: 'Failed', status: 'True' }] }), { state: 'no-finish-time', class: 'failed' }],
    [
      'an unparseable lastTransitionTime is no finish time',
      job({ conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: new Date('garbage') }] }),
      { state: 'no-finish-time', class: 'succeeded' },
    ],
    [
      'lastTransitionTime as a string (raw JSON) is read too',
      job({ conditions: [{ type: 'Failed', status: 'True', lastTransitionTime: '2026-06-01T10:00:00Z' as unknown as Date }] }),
      { state: 'finished', class: 'failed', finishedAt: NOW - 2 * H },
    ],
  ];
  for (const [name, j, expected] of cases) {
    it(name, function () {
      expect(finishState(j)).to.deep.equal(expected);
    });
  }
});

describe('reaper policy: age', function () {
  const r = { maxAgeMs: H, keep: 0 };
  it('a Job exactly max-age old is expired', function () {
    expect(isExpired(NOW - H, r, NOW)).to.equal(true);
  });
  it('one millisecond younger than max-age is not', function () {
    expect(isExpired(NOW - H + 1, r, NOW)).to.equal(false);
  });
  it('a finish time in the future (clock skew) is not expired', function () {
    expect(isExpired(NOW + H, r, NOW)).to.equal(false);
  });
  it('max-age 0 expires every finished Job at once', function () {
    expect(isExpired(NOW, { maxAgeMs: 0, keep: 0 }, NOW)).to.equal(true);
  });
});

describe('reaper policy: decisions', function () {
  it('never deletes running, suspended or being-deleted Jobs, however old the population', function () {
    const d = decide([job({ name: 'run' }), job({ name: 'sus', suspend: true }), job({ name: 'del', deleting: true, complete: ago(1000 * H) })], policy(), NOW);
    expect(outcome(d)).to.deep.equal({ run: 'keep:running', sus: 'keep:suspended', del: 'keep:deleting' });
  });

  it('separate max ages: a 2 h old success goes, a 2 h old failure stays', function () {
    const d = decide([job({ name: 's', complete: ago(2 * H) }), job({ name: 'f', failed: ago(2 * H) })], policy({}, { keep: 0 }), NOW);
    expect(outcome(d)).to.deep.equal({ s: 'delete', f: 'keep:within-max-age' });
  });

  it('defaults keep the 5 newest failures even when all are past 24 h', function () {
    const jobs = Array.from({ length: 8 }, (_, i) => job({ name: `f${i}`, failed: ago((30 + i) * H) }));
    const d = outcome(decide(jobs, policy(), NOW));
    expect(Object.entries(d).filter(([, o]) => o === 'keep:newest').map(([n]) => n)).to.have.members(['f0', 'f1', 'f2', 'f3', 'f4']);
    expect(Object.entries(d).filter(([, o]) => o === 'delete').map(([n]) => n)).to.have.members(['f5', 'f6', 'f7']);
  });

  it('keep-newest counts young Jobs first: their slots are not given to old ones', function () {
    const jobs = [job({ name: 'young', failed: ago(H) }), job({ name: 'old1', failed: ago(30 * H) }), job({ name: 'old2', failed: ago(40 * H) })];
    expect(outcome(decide(jobs, policy({}, { keep: 2 }), NOW))).to.deep.equal({ young: 'keep:within-max-age', old1: 'keep:newest', old2: 'delete' });
  });

  it('keep-newest is per class: failures do not use success slots', function () {
    const jobs = [job({ name: 's1', complete: ago(2 * H) }), job({ name: 's2', complete: ago(3 * H) }), job({ name: 'f1', failed: ago(30 * H) })];
    expect(outcome(decide(jobs, policy({ keep: 1 }, { keep: 0 }), NOW))).to.deep.equal({ s1: 'keep:newest', s2: 'delete', f1: 'delete' });
  });

  it('keep-newest is independent of list order', function () {
    const names = ['a', 'b', 'c', 'd', 'e'];
    const jobs = names.map((n, i) => job({ name: n, complete: ago((2 + i) * H) }));
    const forward = outcome(decide(jobs, policy({ keep: 2 }), NOW));
    const backward = outcome(decide([...jobs].reverse(), policy({ keep: 2 }), NOW));
    expect(forward).to.deep.equal(backward).and.deep.equal({ a: 'keep:newest', b: 'keep:newest', c: 'delete', d: 'delete', e: 'delete' });
  });

  it('same-second finish times: the tie breaks by name, the same way every run', function () {
    const t = ago(5 * H);
    const jobs = [job({ name: 'x-2', complete: t }), job({ name: 'x-1', complete: t }), job({ name: 'x-3', complete: t })];
    expect(outcome(decide(jobs, policy({ keep: 1 }), NOW))).to.deep.equal({ 'x-3': 'keep:newest', 'x-2': 'delete', 'x-1': 'delete' });
    expect(outcome(decide(jobs.reverse(), policy({ keep: 1 }), NOW))).to.deep.include({ 'x-3': 'keep:newest' });
  });

  it('Jobs being deleted take no keep-newest slot', function () {
    const jobs = [job({ name: 'going', deleting: true, failed: ago(25 * H) }), job({ name: 'old', failed: ago(30 * H) })];
    expect(outcome(decide(jobs, policy({}, { keep: 1 }), NOW))).to.deep.equal({ going: 'keep:deleting', old: 'keep:newest' });
  });

  it('a Job with no finish time is kept and takes no slot', function () {
    const jobs = [job({ name: 'nt', conditions: [{ type: 'Failed', status: 'True' }] }), job({ name: 'old', failed: ago(30 * H) })];
    expect(outcome(decide(jobs, policy({}, { keep: 1 }), NOW))).to.deep.equal({ nt: 'keep:no-finish-time', old: 'keep:newest' });
  });

  it('each Job gets exactly one decision', function () {
    const jobs = [job({ complete: ago(2 * H) }), job({ failed: ago(30 * H) }), job(), job({ suspend: true }), job({ complete: ago(1) })];
    const d = decide(jobs, policy({ keep: 1 }, { keep: 1 }), NOW);
    expect(d.map((x) => x.job.name).sort()).to.deep.equal(jobs.map((j) => j.metadata!.name!).sort());
  });

  it('a delete decision carries the uid the precondition needs', function () {
    const [d] = decide([job({ name: 'u', complete: ago(2 * H) })], policy(), NOW);
    expect(d).to.deep.include({ action: 'delete', reason: 'expired' });
    expect(d!.job.uid).to.equal('uid-u');
  });

  it('fuzz: streaming decisions equal a sort of the whole list, for random populations and orders', function () {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 300; round++) {
      const p = policy({ keep: Math.floor(rand() * 4), maxAgeMs: Math.floor(rand() * 5) * H }, { keep: Math.floor(rand() * 4), maxAgeMs: Math.floor(rand() * 5) * H });
      const jobs = Array.from({ length: Math.floor(rand() * 30) }, (_, i) => {
        const t = ago(Math.floor(rand() * 8) * H); // coarse times force ties
        const kind = rand();
        return job({ name: `j${round}-${i}`, ...(kind < 0.45 ? { complete: t } : kind < 0.9 ? { failed: t } : kind < 0.95 ? { suspend: true } : {}) });
      });
      // Reference: sort each class by newness, keep the first `keep`, the rest by age.
      const expected: Record<string, string> = {};
      for (const cls of ['succeeded', 'failed'] as const) {
        const finished = jobs
          .map((j) => ({ j, s: finishState(j) }))
          .filter((x) => x.s.state === 'finished' && x.s.class === cls)
          .map((x) => ({ name: x.j.metadata!.name!, uid: '', class: cls, finishedAt: (x.s as { finishedAt: number }).finishedAt }) as FinishedJob)
          .sort((a, b) => (newer(a, b) ? -1 : 1));
        finished.forEach((f, i) => {
          const expired = isExpired(f.finishedAt, p[cls], NOW);
          expected[f.name] = i < p[cls].keep ? (expired ? 'keep:newest' : 'keep:within-max-age') : expired ? 'delete' : 'keep:within-max-age';
        });
      }
      for (const j of jobs) expected[j.metadata!.name!] ??= `keep:${finishState(j).state}`;
      expect(outcome(decide(jobs, p, NOW)), `round ${round}`).to.deep.equal(expected);
    }
  });
});

describe('reaper policy: NewestKept', function () {
  const f = (name: string, finishedAt: number): FinishedJob => ({ name, uid: name, class: 'failed', finishedAt });

  it('capacity 0 holds nothing: every Job comes straight back', function () {
    const k = new NewestKept(0);
    expect(k.offer(f('a', 1))?.name).to.equal('a');
    expect(k.drain()).to.deep.equal([]);
  });

  it('an older Job than all held comes back unchanged; a newer one evicts the oldest held', function () {
    const k = new NewestKept(2);
    expect(k.offer(f('b', 20))).to.equal(undefined);
    expect(k.offer(f('c', 30))).to.equal(undefined);
    expect(k.offer(f('a', 10))?.name).to.equal('a');
    expect(k.offer(f('d', 40))?.name).to.equal('b');
    expect(k.drain().map((x) => x.name).sort()).to.deep.equal(['c', 'd']);
  });

  it('holds at most its capacity, whatever streams past', function () {
    const k = new NewestKept(3);
    for (let i = 0; i < 10_000; i++) k.offer(f(`j${i}`, (i * 7919) % 10_007));
    const held = k.drain().map((x) => x.finishedAt).sort((a, b) => b - a);
    expect(held).to.have.length(3);
    expect(held).to.deep.equal([10_006, 10_005, 10_004]);
  });
});
