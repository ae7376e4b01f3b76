/**
 * The reaper against the real control plane, acting as the job-robot ServiceAccount under
 * config/rbac.yaml: a mixed population finished through the real job controller (pods reported by
 * the kubelet stand-in), deleted through the real garbage collector. Ages are made testable by
 * handing the reaper a clock (`now`) instead of waiting an hour.
 */
import { expect } from 'chai';
import { BatchV1Api, CoreV1Api, type V1Job } from '@kubernetes/client-node';
import { restOf } from '../../function/kube/client.ts';
import { restJobs } from '../../function/kube/jobs-api.ts';
import { ownerLabels } from '../../function/kube/labels.ts';
import type { KubeRest } from '../../function/kube/rest.ts';
import { Reaper, type JobsApi } from '../../function/reaper/reap.ts';
import { loadReaperConfig } from '../../function/reaper/config.ts';
import type { Policy } from '../../function/reaper/policy.ts';
import { applyManifests, eventually, serviceAccountConfig, useNamespace } from '../helpers/kube.ts';
import { plainJob, waitForJobCondition } from '../helpers/jobs.ts';
import { finishJobPods } from '../helpers/pods.ts';
import { readRepoFile } from '../helpers/paths.ts';
/** As Knative runs it: K_SERVICE names the Service, the default token audience. */
const load = (env: NodeJS.ProcessEnv) => loadReaperConfig({ K_SERVICE: 'job-robot-reaper', ...env });

const H = 3_600_000;
const HOLD = 'job-robot.test/hold';
const CONTROLLER_UID = 'batch.kubernetes.io/controller-uid';

/** The population, by name. Owned = job-robot's labels, no instance. */
const OWNED = ownerLabels();
const BLUE = ownerLabels('blue');
const UNLABELLED = {};
const HELM = { 'app.kubernetes.io/managed-by': 'Helm' };

type Plan = { labels: Record<string, string>; finish?: 'Succeeded' | 'Failed'; when?: 'old' | 'new'; suspend?: boolean; hold?: boolean };
const PLAN: Record<string, Plan> = {
  's-old-1': { labels: OWNED, finish: 'Succeeded', when: 'old' },
  's-old-2': { labels: OWNED, finish: 'Succeeded', when: 'old' },
  'f-old-1': { labels: OWNED, finish: 'Failed', when: 'old' },
  'f-old-2': { labels: OWNED, finish: 'Failed', when: 'old' },
  's-new': { labels: OWNED, finish: 'Succeeded', when: 'new' },
  'f-new': { labels: OWNED, finish: 'Failed', when: 'new' },
  running: { labels: OWNED },
  suspended: { labels: OWNED, suspend: true },
  'being-deleted': { labels: OWNED, finish: 'Succeeded', when: 'old', hold: true },
  'x-s-old': { labels: UNLABELLED, finish: 'Succeeded', when: 'old' },
  'x-f-old': { labels: UNLABELLED, finish: 'Failed', when: 'old' },
  'x-running': { labels: UNLABELLED },
  'x-suspended': { labels: UNLABELLED, suspend: true },
  'helm-s-old': { labels: HELM, finish: 'Succeeded', when: 'old' },
  'blue-s-old': { labels: BLUE, finish: 'Succeeded', when: 'old' },
  'blue-f-old': { labels: BLUE, finish: 'Failed', when: 'old' },
  'blue-running': { labels: BLUE },
};
const EXPIRED_OWNED = ['f-old-1', 'f-old-2', 's-old-1', 's-old-2'];

/** Both classes 1 h, one failed Job always kept: with `now` = last old finish + 1 h, old is expired and new is not. */
const POLICY: Policy = { succeeded: { maxAgeMs: H, keep: 0 }, failed: { maxAgeMs: H, keep: 1 } };

/** The Jobs API over `rest`, recording every delete it is asked for. */
function recording(rest: KubeRest): { api: JobsApi; deleted: string[] } {
  const jobs = restJobs(rest);
  const deleted: string[] = [];
  return {
    deleted,
    api: {
      listJobs: (namespace, page) => jobs.listJobs(namespace, page),
      deleteJob: (namespace, name, body) => {
        deleted.push(name);
        return jobs.deleteJob(namespace, name, body);
      },
    },
  };
}

const finishTime = (job: V1Job): number =>
  new Date(job.status!.conditions!.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')!.lastTransitionTime!).getTime();

describe('reaper on the real control plane: a mixed population, as job-robot', function () {
  this.timeout(180_000);
  const ns = useNamespace('reap');
  /** As job-robot, as in production: one connection pool, a deadline on every call. */
  let robot: KubeRest;
  let now: Date;
  const uids: Record<string, string> = {};

  const jobNames = async () =>
    (await ns.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns.name })).items.map((j) => j.metadata!.name!).sort();
  const reaperAs = (api: JobsApi, extra: { instance?: string; policy?: Policy; now?: () => Date } = {}) =>
    new Reaper(api, { namespace: ns.name, policy: POLICY, concurrency: 4, pageSize: 3, now: () => now, ...extra });

  before(async function () {
    await applyManifests(ns.kc, readRepoFile('config/rbac.yaml'), ns.name);
    robot = restOf(await serviceAccountConfig(ns.kc, ns.name, 'job-robot'), 10_000);
    const batch = ns.kc.makeApiClient(BatchV1Api);

    for (const [name, plan] of Object.entries(PLAN)) {
      const job = plainJob(name, { labels: plan.labels });
      if (plan.suspend) job.spec!.suspend = true;
      if (plan.hold) job.metadata!.finalizers = [HOLD];
      uids[name] = (await batch.createNamespacedJob({ namespace: ns.name, body: job })).metadata!.uid!;
    }
    const finish = async (when: 'old' | 'new') => {
      const names = Object.entries(PLAN).filter(([, p]) => p.when === when);
      await Promise.all(names.map(([name, p]) => finishJobPods(ns.kc, ns.name, name, p.finish!)));
      await Promise.all(names.map(([name]) => waitForJobCondition(ns.kc, ns.name, name)));
      return Promise.all(names.map(async ([name]) => finishTime(await batch.readNamespacedJob({ name, namespace: ns.name }))));
    };
    const oldTimes = await finish('old');
    const lastOld = Math.max(...oldTimes);
    // Condition times have one-second resolution: let a whole second pass so "new" is strictly newer.
    while (Date.now() < lastOld + 2000) await new Promise((r) => setTimeout(r, 100));
    const newTimes = await finish('new');
    expect(Math.min(...newTimes)).to.be.greaterThan(lastOld);
    now = new Date(lastOld + H);

    await batch.deleteNamespacedJob({ name: 'being-deleted', namespace: ns.name, propagationPolicy: 'Background' });
    const held = await batch.readNamespacedJob({ name: 'being-deleted', namespace: ns.name });
    expect(held.metadata!.deletionTimestamp).to.be.ok;
  });

  after(async function () {
    robot?.close();
    await ns.kc
      .makeApiClient(BatchV1Api)
      .patchNamespacedJob({ name: 'being-deleted', namespace: ns.name, body: [{ op: 'remove', path: '/metadata/finalizers' }] })
      .catch(() => undefined);
  });

  it('with the real clock, Jobs that finished seconds ago all stay (default retention)', async function () {
    const { api, deleted } = recording(robot);
    const s = await new Reaper(api, { namespace: ns.name, policy: load({}).policy, concurrency: 4, pageSize: 500 }).run();
    expect(deleted).to.deep.equal([]);
    expect(s).to.deep.include({ examined: 9, expired: 0, deleted: 0, errors: 0 });
  });

  it('dry run deletes nothing and reports exactly the expired owned Jobs', async function () {
    const before = await jobNames();
    const { api, deleted } = recording(robot);
    const s = await reaperAs(api).run({ dryRun: true });
    expect(deleted).to.deep.equal([]);
    expect(s.wouldDelete!.map((w) => w.job).sort()).to.deep.equal(EXPIRED_OWNED);
    expect(s).to.deep.include({ dryRun: true, examined: 9, expired: 4, deleted: 0 });
    expect(await jobNames()).to.deep.equal(before);
  });

  it('one reap deletes exactly the expired owned Jobs, and nothing else', async function () {
    const before = await jobNames();
    const { api, deleted } = recording(robot);
    const s = await reaperAs(api).run();
    expect(deleted.sort()).to.deep.equal(EXPIRED_OWNED);
    expect(s).to.deep.include({ examined: 9, expired: 4, deleted: 4, alreadyGone: 0, errors: 0, deletedByClass: { succeeded: 2, failed: 2 } });
    expect(s.kept).to.deep.equal({ running: 1, suspended: 1, deleting: 1, 'no-finish-time': 0, 'within-max-age': 2, newest: 0, 'in-flight': 0, 'in-flight-unknown': 0, 'result-unrecorded': 0 });
    const remaining = await eventually(async () => {
      const names = await jobNames();
      return names.length === before.length - 4 ? names : undefined;
    });
    expect(remaining).to.deep.equal(before.filter((n) => !EXPIRED_OWNED.includes(n)));
  });

  it("the deleted Jobs' pods disappear through the garbage collector; kept Jobs keep theirs", async function () {
    const core = ns.kc.makeApiClient(CoreV1Api);
    const podsOf = async (name: string) =>
      (await core.listNamespacedPod({ namespace: ns.name, labelSelector: `${CONTROLLER_UID}=${uids[name]}` })).items.length;
    await eventually(
      async () => (await Promise.all(EXPIRED_OWNED.map(podsOf))).every((n) => n === 0),
      60_000,
      'pods of the reaped Jobs to be garbage-collected',
    );
    for (const kept of ['s-new', 'f-new', 'x-s-old', 'blue-s-old']) expect(await podsOf(kept), kept).to.equal(1);
  });

  it('the Job being deleted was skipped, not deleted again: it still waits on its finalizer', async function () {
    const job = await ns.kc.makeApiClient(BatchV1Api).readNamespacedJob({ name: 'being-deleted', namespace: ns.name });
    expect(job.metadata!.uid).to.equal(uids['being-deleted']);
    expect(job.metadata!.finalizers).to.deep.equal([HOLD]);
  });

  it('unlabelled, Helm-managed and another instance\u2019s Jobs are untouched in every state', async function () {
    const names = await jobNames();
    for (const name of ['x-s-old', 'x-f-old', 'x-running', 'x-suspended', 'helm-s-old', 'blue-s-old', 'blue-f-old', 'blue-running']) {
      expect(names, name).to.include(name);
    }
  });

  it('a second reap finds nothing more to do', async function () {
    const { api, deleted } = recording(robot);
    const s = await reaperAs(api).run();
    expect(deleted).to.deep.equal([]);
    expect(s).to.deep.include({ examined: 5, expired: 0, deleted: 0, errors: 0 });
  });

  it('a named instance reaps only its own finished Jobs', async function () {
    const { api, deleted } = recording(robot);
    const s = await reaperAs(api, { instance: 'blue', policy: { succeeded: { maxAgeMs: H, keep: 0 }, failed: { maxAgeMs: H, keep: 0 } } }).run();
    expect(deleted.sort()).to.deep.equal(['blue-f-old', 'blue-s-old']);
    expect(s).to.deep.include({ examined: 3, deleted: 2, errors: 0 });
    expect(s.kept.running).to.equal(1);
    const names = await eventually(async () => {
      const n = await jobNames();
      return n.includes('blue-s-old') || n.includes('blue-f-old') ? undefined : n;
    });
    expect(names).to.include.members(['blue-running', 'x-s-old', 'x-f-old', 'helm-s-old', 's-new', 'f-new']);
  });
});
