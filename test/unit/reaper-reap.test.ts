import { expect } from 'chai';
import { InternalError, Misconfigured, RetryLater } from '../../function/http/errors.ts';
import { Reaper, continueAfterExpiry, type JobsApi, type ReaperOptions } from '../../function/reaper/reap.ts';
import type { Policy } from '../../function/reaper/policy.ts';
import { FakeJobs, NOW, apiError, finished, running } from '../helpers/fake-jobs.ts';

const H = 3_600_000;
const POLICY: Policy = { succeeded: { maxAgeMs: H, keep: 0 }, failed: { maxAgeMs: 24 * H, keep: 0 } };

function reaper(api: JobsApi, extra: Partial<ReaperOptions> = {}): Reaper {
  return new Reaper(api, {
    namespace: 'ns',
    policy: POLICY,
    concurrency: 4,
    pageSize: 100,
    now: () => NOW,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    ...extra,
  });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the run to fail');
}

describe('reaper run (fake API server)', function () {
  it('pages with limit and continue under the owner selector until the last page', async function () {
    const api = new FakeJobs(Array.from({ length: 1234 }, (_, i) => finished(`j${i}`, 2 * H)));
    const s = await reaper(api).run();
    expect(api.lists).to.have.length(13);
    expect(api.lists.map((l) => l.limit)).to.deep.equal(Array(13).fill(100));
    expect(api.lists[0]!._continue).to.equal(undefined);
    expect(new Set(api.lists.slice(1).map((l) => l._continue)).size).to.equal(12);
    expect(api.lists.every((l) => l.namespace === 'ns' && l.labelSelector === 'app.kubernetes.io/managed-by=job-robot,!app.kubernetes.io/instance')).to.equal(true);
    expect(s).to.deep.include({ examined: 1234, expired: 1234, deleted: 1234, errors: 0 });
  });

  it('a named instance selects by its instance label', async function () {
    const api = new FakeJobs([]);
    await reaper(api, { instance: 'blue' }).run();
    expect(api.lists[0]!.labelSelector).to.equal('app.kubernetes.io/managed-by=job-robot,app.kubernetes.io/instance=blue');
  });

  it('streams: the next page is listed only once the expired Jobs of the pages before are being deleted', async function () {
    const api = new FakeJobs(Array.from({ length: 500 }, (_, i) => finished(`j${i}`, 2 * H)));
    const startedAtList: number[] = [];
    api.onList = () => {
      startedAtList.push(api.deletes.length);
    };
    await reaper(api, { pageSize: 100 }).run();
    // every delete of page k has started (at most `concurrency` still in flight) before page k+1 is asked for
    expect(startedAtList).to.deep.equal([0, 100, 200, 300, 400]);
  });

  it('never has more deletions in flight than the concurrency, and does use it', async function () {
    const api = new FakeJobs(Array.from({ length: 60 }, (_, i) => finished(`j${i}`, 2 * H)));
    api.deleteDelayMs = 5;
    await reaper(api, { concurrency: 7 }).run();
    expect(api.maxInFlight).to.equal(7);
  });

  it('deletes with Background propagation and the listed uid as precondition', async function () {
    const api = new FakeJobs([finished('old', 2 * H)]);
    await reaper(api).run();
    // in the body: with a body, the API server ignores the propagationPolicy query parameter
    expect(api.deletes).to.deep.equal([{ name: 'old', namespace: 'ns', body: { propagationPolicy: 'Background', preconditions: { uid: 'uid-old' } } }]);
  });

  it('404 (already deleted) and 409 (recreated under the same name) count as done, not errors', async function () {
    const listed = [finished('gone', 2 * H), finished('recreated', 2 * H), finished('plain', 2 * H)];
    const api = new FakeJobs([]);
    api.listNamespacedJob = async () => {
      // Right after the list: another reaper deleted "gone"; "recreated" was deleted and created anew.
      api.jobs = [{ ...finished('recreated', 0), metadata: { name: 'recreated', uid: 'uid-new' } }, finished('plain', 2 * H)];
      return { items: listed, metadata: {} };
    };
    const s = await reaper(api).run();
    expect(s).to.deep.include({ expired: 3, deleted: 1, alreadyGone: 2, errors: 0 });
  });

  it('retries a transient failure of one delete, then succeeds', async function () {
    const api = new FakeJobs([finished('flaky', 2 * H)]);
    api.onDelete = (_name, attempt) => {
      if (attempt === 1) throw apiError(503, 'ServiceUnavailable', 'etcd leader changed');
    };
    const s = await reaper(api).run();
    expect(s).to.deep.include({ deleted: 1, errors: 0 });
    expect(api.deletes).to.have.length(2);
  });

  it('a Job that cannot be deleted is an error in the summary; the others are still deleted', async function () {
    const api = new FakeJobs([finished('a', 2 * H), finished('stuck', 2 * H), finished('b', 2 * H)]);
    api.onDelete = (name) => {
      if (name === 'stuck') throw apiError(500, 'InternalError', 'admission webhook "x" failed');
    };
    const s = await reaper(api).run();
    expect(s).to.deep.include({ deleted: 2, errors: 1 });
    expect(s.failures).to.deep.equal([{ job: 'stuck', code: 500, reason: 'InternalError', message: 'admission webhook "x" failed' }]);
    expect(api.deletes.filter((d) => d.name === 'stuck')).to.have.length(3);
  });

  it('a 422 on delete is not retried', async function () {
    const api = new FakeJobs([finished('bad', 2 * H)]);
    api.onDelete = () => {
      throw apiError(422, 'Invalid', 'nope');
    };
    const s = await reaper(api).run();
    expect(s.errors).to.equal(1);
    expect(api.deletes).to.have.length(1);
  });

  it('403 on list: the run fails as misconfigured, naming the verb and the fix', async function () {
    const api = new FakeJobs([]);
    api.onList = () => {
      throw apiError(403, 'Forbidden', 'jobs.batch is forbidden: User "system:serviceaccount:ns:job-robot" cannot list resource "jobs"');
    };
    const err = await rejection(reaper(api).run());
    expect(err).to.be.instanceOf(Misconfigured);
    expect(err).to.deep.include({ status: 500, reason: 'forbidden', fix: 'grant list jobs.batch in namespace ns: kubectl apply -n ns -f config/rbac.yaml' });
    expect((err as Error).message).to.contain('may not list Jobs in namespace ns').and.contain('cannot list resource "jobs"');
  });

  it('403 on delete: the run stops scheduling deletions and fails naming delete', async function () {
    const api = new FakeJobs(Array.from({ length: 300 }, (_, i) => finished(`j${i}`, 2 * H)));
    api.onDelete = () => {
      throw apiError(403, 'Forbidden', 'cannot delete resource "jobs"');
    };
    const err = await rejection(reaper(api, { concurrency: 4 }).run());
    expect(err).to.be.instanceOf(Misconfigured);
    expect((err as Misconfigured).fix).to.equal('grant delete jobs.batch in namespace ns: kubectl apply -n ns -f config/rbac.yaml');
    expect(api.deletes.length).to.be.at.most(8);
    expect(api.lists).to.have.length(1);
  });

  it('401 is misconfiguration of the credentials', async function () {
    const api = new FakeJobs([]);
    api.onList = () => {
      throw apiError(401, 'Unauthorized', 'Unauthorized');
    };
    const err = await rejection(reaper(api).run());
    expect(err).to.be.instanceOf(Misconfigured).and.deep.include({ reason: 'unauthorized' });
  });

  it('an API server that stays away is 503 with Retry-After from the server', async function () {
    const api = new FakeJobs([]);
    api.onList = () => {
      throw apiError(429, 'TooManyRequests', 'slow down', { details: { retryAfterSeconds: 0 } });
    };
    const err = await rejection(reaper(api).run());
    expect(err).to.be.instanceOf(RetryLater).and.deep.include({ status: 503, reason: 'kube-unavailable', retryAfterSeconds: 1 });
    expect(api.lists).to.have.length(3);
  });

  it('an expired continue token resumes with the token the 410 answer offers, not the stale one', async function () {
    const api = new FakeJobs(Array.from({ length: 250 }, (_, i) => finished(`j${String(i).padStart(3, '0')}`, 2 * H)));
    const stale = new Set<string>();
    api.onList = (_call, req) => {
      const token = req._continue;
      if (token && !token.endsWith('\u0000')) {
        stale.add(token);
        // "\u0000" sorts right after the key: the offered token resumes at the same place
        throw apiError(410, 'Expired', 'The provided continue parameter is too old', { metadata: { continue: `${token}\u0000` } });
      }
    };
    const s = await reaper(api).run();
    expect(s).to.deep.include({ examined: 250, deleted: 250, errors: 0 });
    expect(stale.size).to.equal(2);
  });

  it('a 410 without a resume token fails the run', async function () {
    const api = new FakeJobs(Array.from({ length: 250 }, (_, i) => finished(`j${i}`, 2 * H)));
    api.onList = (_call, req) => {
      if (req._continue) throw apiError(410, 'Expired', 'too old');
    };
    expect(await rejection(reaper(api).run())).to.be.instanceOf(InternalError);
  });

  it('continueAfterExpiry reads only a 410 carrying a token', function () {
    expect(continueAfterExpiry(apiError(410, 'Expired', 'x', { metadata: { continue: 'abc' } }))).to.equal('abc');
    expect(continueAfterExpiry(apiError(410, 'Expired', 'x'))).to.equal(undefined);
    expect(continueAfterExpiry(apiError(409, 'Conflict', 'x', { metadata: { continue: 'abc' } }))).to.equal(undefined);
    expect(continueAfterExpiry(new Error('boom'))).to.equal(undefined);
  });

  it('dry run deletes nothing and lists what it would delete', async function () {
    const api = new FakeJobs([finished('old', 2 * H), finished('new', 60_000), running('run')]);
    const s = await reaper(api).run({ dryRun: true });
    expect(api.deletes).to.deep.equal([]);
    expect(s).to.deep.include({ dryRun: true, examined: 3, expired: 1, deleted: 0 });
    expect(s.wouldDelete).to.deep.equal([{ job: 'old', class: 'succeeded', finishedAt: new Date(NOW.getTime() - 2 * H).toISOString() }]);
    expect(s.kept).to.deep.include({ running: 1, 'within-max-age': 1 });
  });

  it('configured dry run holds unless a run overrides it', async function () {
    const api = new FakeJobs([finished('old', 2 * H)]);
    expect((await reaper(api, { dryRun: true }).run()).deleted).to.equal(0);
    expect((await reaper(api, { dryRun: true }).run({ dryRun: false })).deleted).to.equal(1);
  });

  it('an abort stops listing and scheduling; deletions in flight finish; the summary says interrupted', async function () {
    const api = new FakeJobs(Array.from({ length: 300 }, (_, i) => finished(`j${i}`, 2 * H)));
    api.deleteDelayMs = 2;
    const abort = new AbortController();
    api.onDelete = () => {
      if (api.deletes.length === 10) abort.abort();
    };
    const s = await reaper(api, { concurrency: 2 }).run({ signal: abort.signal });
    expect(s.interrupted).to.equal(true);
    expect(s.deleted).to.equal(api.deletes.length);
    expect(s.deleted).to.be.lessThan(20);
  });

  it('every examined Job is counted once: expired plus kept equals examined', async function () {
    const jobs = [finished('s-old', 2 * H), finished('s-new', 1000), finished('f-old', 48 * H, 'Failed'), finished('f-new', H, 'Failed'), running('r')];
    const s = await reaper(new FakeJobs(jobs), { policy: { succeeded: { maxAgeMs: H, keep: 0 }, failed: { maxAgeMs: 24 * H, keep: 1 } } }).run();
    const kept = Object.values(s.kept).reduce((a, b) => a + b, 0);
    expect(s.expired + kept).to.equal(s.examined);
    expect(s).to.deep.include({ examined: 5, expired: 2, deleted: 2, deletedByClass: { succeeded: 1, failed: 1 } });
    expect(s.kept).to.deep.equal({ running: 1, suspended: 0, deleting: 0, 'no-finish-time': 0, 'within-max-age': 2, newest: 0 });
  });

  it('refuses a concurrency or page size below 1', function () {
    expect(() => reaper(new FakeJobs([]), { concurrency: 0 })).to.throw(RangeError, /concurrency/);
    expect(() => reaper(new FakeJobs([]), { pageSize: 0 })).to.throw(RangeError, /pageSize/);
  });
});
