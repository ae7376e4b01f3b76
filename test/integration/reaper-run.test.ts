/**
 * One reaper run against the real control plane, acting as the job-robot ServiceAccount: paging
 * with small pages across many Jobs, streaming and bounded delete concurrency, what each answer to
 * a delete counts as, dry run, abort, an expired continue token (a real etcd compaction), and the
 * failures a healthy API server never gives (through a fault proxy in front of it).
 *
 * The reaper gets the real Jobs API over kube/rest.ts wrapped in `Observed`, which only writes down
 * the calls it passes through; every answer comes from the API server.
 */
import { expect } from 'chai';
import { AdmissionregistrationV1Api, BatchV1Api, KubeConfig, type V1Job } from '@kubernetes/client-node';
import { InternalError, Misconfigured, RetryLater } from '../../function/http/errors.ts';
import { kubeFailure } from '../../function/kube/api-error.ts';
import { CallOptions } from '../../function/kube/call-options.ts';
import { restOf } from '../../function/kube/client.ts';
import { restJobs, type JobList, type JobsClient } from '../../function/kube/jobs-api.ts';
import { ownerLabels, ownerSelector } from '../../function/kube/labels.ts';
import type { KubeRest } from '../../function/kube/rest.ts';
import type { Policy } from '../../function/reaper/policy.ts';
import { Reaper, type JobDeletion, type JobsApi, type JobsPage, type ReaperOptions } from '../../function/reaper/reap.ts';
import type { ReapSummary } from '../../function/reaper/summary.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { createFinishedJob, inParallel, suspendedJob, type Outcome } from '../helpers/finished.ts';
import { plainJob } from '../helpers/jobs.ts';
import { applyManifests, eventually, rejection, serviceAccountConfig, useNamespace } from '../helpers/kube.ts';
import { readRepoFile } from '../helpers/paths.ts';
import { strangerConfig } from '../helpers/stranger.ts';

const H = 3_600_000;
const OWNED = ownerLabels();
const POLICY: Policy = { succeeded: { maxAgeMs: H, keep: 0 }, failed: { maxAgeMs: 24 * H, keep: 0 } };
/** Retries as in production, with delays short enough for tests. */
const FAST_RETRY = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };
const hoursAgo = (h: number) => new Date(Date.now() - h * H);

interface ListCall {
  namespace: string;
  page: JobsPage;
  /** Delete calls made before this list was sent. */
  deletesBefore: number;
  items?: string[];
  /** The failure's status code, when the list failed (0: no answer). */
  failed?: number;
}

interface DeleteCall {
  namespace: string;
  name: string;
  body: JobDeletion;
}

/** The real Jobs API over kube/rest.ts, writing down every call the reaper makes through it. */
class Observed implements JobsApi {
  readonly lists: ListCall[] = [];
  readonly deletes: DeleteCall[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Runs after the real list answered, before the reaper sees the answer. */
  afterList?: (list: JobList) => Promise<void>;
  /** Runs as each delete is sent. */
  onDelete?: (name: string, calls: number) => void;
  private readonly jobs: JobsClient;

  constructor(rest: KubeRest) {
    this.jobs = restJobs(rest);
  }

  async listJobs(namespace: string, page: JobsPage): Promise<JobList> {
    const call: ListCall = { namespace, page, deletesBefore: this.deletes.length };
    this.lists.push(call);
    try {
      const list = await this.jobs.listJobs(namespace, page);
      call.items = list.items.map((j) => j.metadata!.name!);
      await this.afterList?.(list);
      return list;
    } catch (err) {
      call.failed = kubeFailure(err).code;
      throw err;
    }
  }

  async deleteJob(namespace: string, name: string, body: JobDeletion): Promise<void> {
    this.deletes.push({ namespace, name, body });
    this.onDelete?.(name, this.deletes.length);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.jobs.deleteJob(namespace, name, body);
    } finally {
      this.inFlight--;
    }
  }

  attemptsOn(name: string): number {
    return this.deletes.filter((d) => d.name === name).length;
  }
}

const finishTime = (job: V1Job): string =>
  new Date(job.status!.conditions!.find((c) => c.type === 'Complete' || c.type === 'Failed')!.lastTransitionTime!).toISOString();

describe('reaper run on the real control plane, as job-robot', function () {
  this.timeout(60_000);
  const ns = useNamespace('reap-run');
  let robot: KubeConfig;
  // set-up at speed: one reused connection pool for creating the Jobs
  const calls = new CallOptions(10_000);
  const rests: KubeRest[] = [];
  /** The Jobs API as `kc` over kube/rest.ts, as in production (one pool, a deadline on every call), observed. */
  const observed = (kc: KubeConfig, timeoutMs = 10_000): Observed => {
    const rest = restOf(kc, timeoutMs);
    rests.push(rest);
    return new Observed(rest);
  };

  before(async function () {
    await applyManifests(ns.kc, readRepoFile('config/rbac.yaml'), ns.name);
    robot = await serviceAccountConfig(ns.kc, ns.name, 'job-robot');
  });
  after(async function () {
    for (const rest of rests.splice(0)) rest.close();
    await calls.close();
  });

  const batch = () => ns.kc.makeApiClient(BatchV1Api);
  const jobNames = async () => (await batch().listNamespacedJob({ namespace: ns.name })).items.map((j) => j.metadata!.name!).sort();
  const settled = (expected: string[]) =>
    eventually(async () => JSON.stringify(await jobNames()) === JSON.stringify([...expected].sort()), 30_000, `Jobs to be [${expected.join(', ')}]`);
  const populate = (spec: Array<[string, Outcome, Date, Record<string, string>?]>): Promise<V1Job[]> => {
    const created: V1Job[] = [];
    return inParallel(spec, 16, async ([name, outcome, at, labels]) => {
      created.push(await createFinishedJob(ns.kc, ns.name, name, outcome, at, labels ?? OWNED, calls));
    }).then(() => created);
  };
  const clean = async () => {
    await batch().deleteCollectionNamespacedJob({ namespace: ns.name, body: { propagationPolicy: 'Background' } });
    await settled([]);
  };
  const reaper = (api: JobsApi, extra: Partial<ReaperOptions> = {}) =>
    new Reaper(api, { namespace: ns.name, policy: POLICY, concurrency: 4, pageSize: 100, retry: FAST_RETRY, ...extra });

  describe('150 expired Jobs among 30 that are not ours, page size 16, concurrency 7', function () {
    const owned = Array.from({ length: 150 }, (_, i) => `j-${String(i).padStart(3, '0')}`);
    // foreign Jobs between ours in key order: unlabelled, and another instance's
    const foreign = owned.filter((_, i) => i % 5 === 0).map((n, i) => [`${n}-x`, i % 2 ? {} : ownerLabels('blue')] as const);
    const uids = new Map<string, string>();
    let api: Observed;
    let summary: ReapSummary;

    before(async function () {
      const created = await populate([
        ...owned.map((n, i): [string, Outcome, Date] => [n, i % 3 ? 'Complete' : 'Failed', hoursAgo(30)]),
        ...foreign.map(([n, labels]): [string, Outcome, Date, Record<string, string>] => [n, 'Complete', hoursAgo(30), labels]),
      ]);
      for (const job of created) uids.set(job.metadata!.name!, job.metadata!.uid!);
      api = observed(robot);
      summary = await reaper(api, { pageSize: 16, concurrency: 7 }).run();
    });
    after(clean);

    it('pages with limit and continue under the owner selector; the server fills every page but the last', function () {
      expect(api.lists.every((l) => l.namespace === ns.name && l.page.labelSelector === ownerSelector() && l.page.limit === 16)).to.equal(true);
      expect(api.lists[0]!.page.continue).to.equal(undefined);
      const tokens = api.lists.slice(1).map((l) => l.page.continue);
      expect(new Set(tokens).size, 'a fresh token for every page').to.equal(api.lists.length - 1);
      // the label selector filters on the server, yet every page but the last holds `limit` of ours
      const sizes = api.lists.map((l) => l.items!.length);
      expect(sizes.slice(0, -1).every((n) => n === 16), String(sizes)).to.equal(true);
      expect(api.lists).to.have.length(10);
      expect(api.lists.flatMap((l) => l.items!)).to.deep.equal(owned);
    });

    it('streams: the next page is listed only once the deletions of every page before have started', function () {
      expect(api.lists.map((l) => l.deletesBefore)).to.deep.equal(api.lists.map((_, k) => 16 * k));
    });

    it('never has more deletions in flight than the concurrency, and does use it', function () {
      expect(api.maxInFlight).to.equal(7);
    });

    it('deletes each Job once, with Background propagation and the uid it was listed with as precondition', function () {
      expect(api.deletes.map((d) => d.name).sort()).to.deep.equal(owned);
      for (const d of api.deletes) {
        // in the body: with a body, the API server ignores the propagationPolicy query parameter
        expect(d).to.deep.equal({ name: d.name, namespace: ns.name, body: { propagationPolicy: 'Background', preconditions: { uid: uids.get(d.name) } } });
      }
    });

    it('the summary counts every Job once; only the foreign Jobs are left', async function () {
      expect(summary).to.deep.include({ examined: 150, expired: 150, deleted: 150, alreadyGone: 0, errors: 0, deletedByClass: { succeeded: 100, failed: 50 } });
      await settled(foreign.map(([n]) => n));
    });
  });

  describe('what a delete can answer', function () {
    afterEach(clean);

    it('404 (deleted by someone else) and 409 (recreated under the same name) count as done, not errors', async function () {
      await populate([
        ['gone', 'Complete', hoursAgo(2)],
        ['recreated', 'Complete', hoursAgo(2)],
        ['plain', 'Complete', hoursAgo(2)],
      ]);
      const api = observed(robot);
      let newUid = '';
      // right after the reaper's list: "gone" is deleted by another reaper, "recreated" is deleted and created anew
      api.afterList = async () => {
        const admin = batch();
        for (const name of ['gone', 'recreated']) await admin.deleteNamespacedJob({ name, namespace: ns.name, body: { propagationPolicy: 'Background' } });
        await eventually(async () => !(await jobNames()).some((n) => n === 'gone' || n === 'recreated'));
        newUid = (await admin.createNamespacedJob({ namespace: ns.name, body: suspendedJob('recreated', OWNED) })).metadata!.uid!;
      };
      const s = await reaper(api).run();
      expect(s).to.deep.include({ expired: 3, deleted: 1, alreadyGone: 2, errors: 0 });
      expect(api.deletes.map((d) => d.name).sort()).to.deep.equal(['gone', 'plain', 'recreated']);
      const survivor = await batch().readNamespacedJob({ name: 'recreated', namespace: ns.name });
      expect(survivor.metadata!.uid).to.equal(newUid);
      await settled(['recreated']);
    });

    it('a delete an admission policy refuses (422) is an error in the summary, not retried; the others are deleted', async function () {
      await populate([
        ['a', 'Complete', hoursAgo(2)],
        ['stuck', 'Complete', hoursAgo(2)],
        ['b', 'Failed', hoursAgo(30)],
      ]);
      const admission = ns.kc.makeApiClient(AdmissionregistrationV1Api);
      const name = `keep-stuck-${ns.name}`;
      await admission.createValidatingAdmissionPolicy({
        body: {
          metadata: { name },
          spec: {
            failurePolicy: 'Fail',
            matchConstraints: { resourceRules: [{ apiGroups: ['batch'], apiVersions: ['v1'], resources: ['jobs'], operations: ['DELETE'] }] },
            validations: [{ expression: "oldObject.metadata.name != 'stuck'", message: 'this Job is kept for an audit', reason: 'Invalid' }],
          },
        },
      });
      await admission.createValidatingAdmissionPolicyBinding({
        body: {
          metadata: { name },
          spec: { policyName: name, validationActions: ['Deny'], matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.name } } } },
        },
      });
      const refused = async () => {
        try {
          await batch().deleteNamespacedJob({ name: 'stuck', namespace: ns.name, dryRun: 'All' });
          return false;
        } catch (err) {
          return kubeFailure(err).code === 422;
        }
      };
      try {
        await eventually(refused, 20_000, 'the admission policy to take effect');
        const api = observed(robot);
        const s = await reaper(api).run();
        expect(s).to.deep.include({ expired: 3, deleted: 2, errors: 1 });
        expect(s.failures).to.have.length(1);
        expect(s.failures[0]).to.deep.include({ job: 'stuck', code: 422, reason: 'Invalid' });
        expect(s.failures[0]!.message).to.contain('this Job is kept for an audit');
        expect(api.attemptsOn('stuck')).to.equal(1);
        await settled(['stuck']);
      } finally {
        await admission.deleteValidatingAdmissionPolicyBinding({ name }).catch(() => undefined);
        await admission.deleteValidatingAdmissionPolicy({ name }).catch(() => undefined);
        await eventually(async () => !(await refused()), 20_000, 'the admission policy to be gone');
      }
    });

    it('delete refused by RBAC on a later page: the run stops at the first refusal, lists no further page and names delete', async function () {
      await populate(Array.from({ length: 20 }, (_, i): [string, Outcome, Date] => [`old-${String(i).padStart(2, '0')}`, 'Complete', hoursAgo(3)]));
      // get and list only: the Role job-robot had before delete was granted
      await applyManifests(
        ns.kc,
        [
          'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: lister}',
          'apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: list-jobs}\nrules: [{apiGroups: [batch], resources: [jobs], verbs: [get, list]}]',
          'apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: lister}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: list-jobs}\nsubjects: [{kind: ServiceAccount, name: lister}]',
        ].join('\n---\n'),
        ns.name,
      );
      const api = observed(await serviceAccountConfig(ns.kc, ns.name, 'lister'));
      const err = await rejection(reaper(api, { pageSize: 5, concurrency: 2 }).run());
      expect(err).to.be.instanceOf(Misconfigured);
      expect((err as Misconfigured).fix).to.equal(`grant delete jobs.batch in namespace ${ns.name}: kubectl apply -n ${ns.name} -f config/rbac.yaml`);
      expect(api.lists).to.have.length(1);
      expect(api.deletes.length).to.be.within(1, 4);
      expect(await jobNames()).to.have.length(20);
    });

    it('credentials the API server does not accept (401) are misconfiguration of the credentials', async function () {
      const err = await rejection(reaper(observed(strangerConfig(robot))).run());
      expect(err).to.be.instanceOf(Misconfigured).and.deep.include({ reason: 'unauthorized' });
    });
  });

  describe('dry run, abort, options', function () {
    afterEach(clean);

    it('dry run deletes nothing and lists what it would delete with its finish time; every Job is counted once', async function () {
      const [old] = await populate([['old', 'Complete', hoursAgo(2)]]);
      await populate([['young', 'Complete', new Date(Date.now() - 60_000)]]);
      await batch().createNamespacedJob({ namespace: ns.name, body: plainJob('running', { labels: OWNED }) });
      const api = observed(robot);
      const s = await reaper(api).run({ dryRun: true });
      expect(api.deletes).to.deep.equal([]);
      expect(s).to.deep.include({ dryRun: true, examined: 3, expired: 1, deleted: 0 });
      expect(s.wouldDelete).to.deep.equal([{ job: 'old', class: 'succeeded', finishedAt: finishTime(old!) }]);
      expect(s.kept).to.deep.equal({ running: 1, suspended: 0, deleting: 0, 'no-finish-time': 0, 'within-max-age': 1, newest: 0, 'in-flight': 0, 'in-flight-unknown': 0, 'result-unrecorded': 0 });
      expect(s.expired + Object.values(s.kept).reduce((a, b) => a + b, 0)).to.equal(s.examined);
      expect(await jobNames()).to.deep.equal(['old', 'running', 'young']);
    });

    it('a configured dry run holds unless a run overrides it', async function () {
      await populate([['old', 'Complete', hoursAgo(2)]]);
      const dry = reaper(observed(robot), { dryRun: true });
      expect((await dry.run()).deleted).to.equal(0);
      expect(await jobNames()).to.deep.equal(['old']);
      expect((await dry.run({ dryRun: false })).deleted).to.equal(1);
      await settled([]);
    });

    it('an abort stops listing and scheduling; deletions in flight finish; the summary says interrupted', async function () {
      const names = Array.from({ length: 40 }, (_, i) => `j-${String(i).padStart(2, '0')}`);
      await populate(names.map((n): [string, Outcome, Date] => [n, 'Complete', hoursAgo(2)]));
      const api = observed(robot);
      const abort = new AbortController();
      api.onDelete = (_name, n) => {
        if (n === 10) abort.abort();
      };
      const s = await reaper(api, { concurrency: 2, pageSize: 10 }).run({ signal: abort.signal });
      expect(s.interrupted).to.equal(true);
      expect(s.deleted, 'every deletion sent was answered and counted').to.equal(api.deletes.length);
      expect(s.deleted).to.be.within(10, 12);
      expect(api.lists.length).to.be.at.most(2);
      // exactly the Jobs the run deleted are gone; it stopped within the first two pages
      await settled(names.filter((n) => !api.deletes.some((d) => d.name === n)));
    });

    it('refuses a concurrency or page size below 1', function () {
      const api = observed(robot);
      expect(() => reaper(api, { concurrency: 0 })).to.throw(RangeError, /concurrency/);
      expect(() => reaper(api, { pageSize: 0 })).to.throw(RangeError, /pageSize/);
    });
  });

  describe('a continue token that expired during the run (etcd compacted under it)', function () {
    after(clean);

    it('the list answers 410 Expired with a fresh token; the reaper resumes after the last Job it saw and ends with the right state', async function () {
      const etcd = process.env['JOB_ROBOT_TEST_ETCD_URL'];
      if (!etcd) {
        process.stderr.write('    skipped: TEST_KUBECONFIG names an external cluster, whose etcd these tests may not compact\n');
        this.skip();
      }
      const expired = Array.from({ length: 30 }, (_, i) => `old-${String(i).padStart(2, '0')}`);
      await populate([
        ...expired.map((n): [string, Outcome, Date] => [n, 'Complete', hoursAgo(2)]),
        ...[0, 1, 2].map((i): [string, Outcome, Date] => [`young-${i}`, 'Complete', hoursAgo(0.1)]),
      ]);
      const api = observed(robot);
      const gateway = async (path: string, body: object) => {
        const res = await fetch(`${etcd}${path}`, { method: 'POST', body: JSON.stringify(body) });
        if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
        return (await res.json()) as { header: { revision: string } };
      };
      const b64 = (text: string) => Buffer.from(text).toString('base64');
      const probe = await batch().listNamespacedJob({ namespace: ns.name, labelSelector: ownerSelector(), limit: 7 });

      // Between the first and second page: two expired Jobs appear, one before the point the run has
      // reached (in key order) and one after; then etcd is compacted at its current revision.
      const paused = async (listed: number) => {
        if (listed !== 1) return;
        await populate([
          ['a-late', 'Complete', hoursAgo(2)],
          ['z-late', 'Complete', hoursAgo(2)],
        ]);
        const { revision } = (await gateway('/v3/kv/range', { key: 'AA==' })).header;
        await gateway('/v3/kv/compaction', { revision, physical: true });
        // As a second API server's compactor would, record the compaction under compact_rev_key. The
        // API server watches that key and drops the watch-cache snapshots older than it (polled every
        // 15 s); until then it keeps answering continued lists from its snapshot, compaction or not.
        await gateway('/v3/kv/put', { key: b64('compact_rev_key'), value: b64(revision) });
        await eventually(
          async () => {
            try {
              await batch().listNamespacedJob({ namespace: ns.name, labelSelector: ownerSelector(), limit: 7, _continue: probe.metadata!._continue! });
              return false;
            } catch (err) {
              return kubeFailure(err).code === 410;
            }
          },
          40_000,
          'a continued list to answer 410 Expired',
        );
      };

      const s = await reaper(api, { pageSize: 7 }).run({ beforeNextPage: paused });

      expect(api.lists[1]!.failed, 'the second page: the token the first one gave has expired').to.equal(410);
      expect(api.lists[2]!.page.continue).to.not.equal(api.lists[1]!.page.continue);
      const seen = api.lists.flatMap((l) => l.items ?? []);
      expect(seen, 'nothing seen twice, nothing skipped').to.deep.equal([...expired, 'young-0', 'young-1', 'young-2', 'z-late']);
      expect(s).to.deep.include({ examined: 34, expired: 31, deleted: 31, alreadyGone: 0, errors: 0 });
      // "a-late" came after the snapshot, before the resume point: the next run's
      await settled(['a-late', 'young-0', 'young-1', 'young-2']);
    });
  });

  describe('failures a healthy API server never gives (through a fault proxy)', function () {
    let proxy: FaultProxy;
    let throughProxy: KubeConfig;
    const JOBS = () => new RegExp(`^/apis/batch/v1/namespaces/${ns.name}/jobs$`);
    const JOB = (name: string) => new RegExp(`^/apis/batch/v1/namespaces/${ns.name}/jobs/${name}$`);
    const status = (code: number, reason: string, message: string, extra: object = {}) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message, ...extra });

    before(async function () {
      proxy = await new FaultProxy(ns.kc).start();
      throughProxy = proxy.through(robot);
    });
    after(async function () {
      await proxy.stop();
    });
    afterEach(async function () {
      proxy.rules = [];
      await clean();
    });

    it('a delete that fails once with 503 is retried and the Job is deleted', async function () {
      await populate([['flaky', 'Complete', hoursAgo(2)]]);
      const rule = {
        method: 'DELETE',
        path: JOB('flaky'),
        fault: { status: 503, body: status(503, 'ServiceUnavailable', 'etcd leader changed') },
        onMatch: () => proxy.rules.splice(proxy.rules.indexOf(rule), 1),
      };
      proxy.rules = [rule];
      const api = observed(throughProxy);
      const s = await reaper(api).run();
      expect(s).to.deep.include({ deleted: 1, errors: 0 });
      expect(api.attemptsOn('flaky')).to.equal(2);
      await settled([]);
    });

    it('a Job whose delete keeps failing with 500 is an error in the summary after 3 tries; the others are deleted', async function () {
      await populate([
        ['a', 'Complete', hoursAgo(2)],
        ['stuck', 'Complete', hoursAgo(2)],
        ['b', 'Complete', hoursAgo(2)],
      ]);
      proxy.rules = [{ method: 'DELETE', path: JOB('stuck'), fault: { status: 500, body: status(500, 'InternalError', 'admission webhook "x" failed') } }];
      const api = observed(throughProxy);
      const s = await reaper(api).run();
      expect(s).to.deep.include({ deleted: 2, errors: 1 });
      expect(s.failures).to.deep.equal([{ job: 'stuck', code: 500, reason: 'InternalError', message: 'admission webhook "x" failed' }]);
      expect(api.attemptsOn('stuck')).to.equal(3);
      await settled(['stuck']);
    });

    it('a list that fails once with 500 is retried and the run completes', async function () {
      await populate([['old', 'Complete', hoursAgo(2)]]);
      const rule = { method: 'GET', path: JOBS(), fault: { status: 500, body: status(500, 'InternalError', 'etcdserver: request timed out') }, onMatch: () => proxy.rules.splice(0, 1) };
      proxy.rules = [rule];
      const api = observed(throughProxy);
      const s = await reaper(api).run();
      expect(api.lists.map((l) => l.failed)).to.deep.equal([500, undefined]);
      expect(s).to.deep.include({ examined: 1, deleted: 1, errors: 0 });
      await settled([]);
    });

    it('an API server that keeps throttling (429) fails the run as 429 with the server\u2019s Retry-After, after 3 tries', async function () {
      proxy.rules = [
        {
          method: 'GET',
          path: JOBS(),
          fault: { status: 429, headers: { 'retry-after': '4' }, body: status(429, 'TooManyRequests', 'Too many requests, please try again later.', { details: { retryAfterSeconds: 4 } }) },
        },
      ];
      const api = observed(throughProxy);
      const err = await rejection(reaper(api).run());
      expect(err).to.be.instanceOf(RetryLater).and.deep.include({ status: 429, reason: 'api-throttled', retryAfterSeconds: 4 });
      expect(api.lists.map((l) => l.failed)).to.deep.equal([429, 429, 429]);
    });

    it('an API server that does not answer: each list gives up at the call deadline; the run fails as 503', async function () {
      proxy.rules = [{ method: 'GET', path: JOBS(), fault: { hang: true } }];
      const api = observed(throughProxy, 500);
      const t0 = Date.now();
      const err = await rejection(reaper(api, { retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 20 } }).run());
      expect(err).to.be.instanceOf(RetryLater).and.deep.include({ status: 503, reason: 'api-unreachable' });
      expect(api.lists.map((l) => l.failed)).to.deep.equal([0, 0]);
      expect(Date.now() - t0).to.be.within(900, 5000);
    });

    it('a 410 on a continued list without a fresh token fails the run; the first page\u2019s Jobs are deleted', async function () {
      const names = Array.from({ length: 12 }, (_, i) => `j-${String(i).padStart(2, '0')}`);
      await populate(names.map((n): [string, Outcome, Date] => [n, 'Complete', hoursAgo(2)]));
      const api = observed(throughProxy);
      const gone = () => {
        proxy.rules = [{ method: 'GET', path: JOBS(), fault: { status: 410, body: status(410, 'Expired', 'The provided continue parameter is too old') } }];
      };
      const err = await rejection(reaper(api, { pageSize: 5 }).run({ beforeNextPage: gone }));
      expect(err).to.be.instanceOf(InternalError);
      expect((err as Error).message).to.contain('410 Expired');
      expect(api.lists.map((l) => l.failed)).to.deep.equal([undefined, 410]);
      await settled(names.slice(5));
    });
  });
});
