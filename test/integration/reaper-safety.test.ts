/**
 * The reaper's safety and operations on the real control plane, as job-robot: overlapping runs,
 * keep-newest counts, the uid precondition, permissions (403 and the start-up check), the HTTP
 * function and the operator CLI. Populations here are finished through the jobs/status subresource
 * at chosen times (test/helpers/finished.ts), so the real clock and the default retention apply.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { Health } from '../../function/http/health.ts';
import { createRegistry } from '../../function/http/metrics.ts';
import { listen } from '../../function/http/server.ts';
import { Misconfigured } from '../../function/http/errors.ts';
import { ownerLabels } from '../../function/kube/labels.ts';
import { createLogger } from '../../function/log.ts';
import { AccessWatch, PERMISSIONS_CHECK } from '../../function/reaper/access.ts';
import { PING_TYPE, reaperApp } from '../../function/reaper/app.ts';
import { admitAnyone } from '../../function/auth/gate.ts';
import { loadReaperConfig } from '../../function/reaper/config.ts';
import { ReaperMetrics } from '../../function/reaper/metrics.ts';
import { Reaper, type JobsApi } from '../../function/reaper/reap.ts';
import { Runs } from '../../function/reaper/runs.ts';
import type { ReapSummary } from '../../function/reaper/summary.ts';
import { createFinishedJob, inParallel, type Outcome } from '../helpers/finished.ts';
import { plainJob } from '../helpers/jobs.ts';
import { applyManifests, eventually, grantRole, rejection, serviceAccountConfig, useNamespace } from '../helpers/kube.ts';
import { ROOT, readRepoFile } from '../helpers/paths.ts';
import { restOf } from '../../function/kube/client.ts';
import { restJobs } from '../../function/kube/jobs-api.ts';
import type { KubeRest } from '../../function/kube/rest.ts';

/** As Knative runs it: K_SERVICE names the Service, the default token audience. */
const load = (env: NodeJS.ProcessEnv) => loadReaperConfig({ K_SERVICE: 'job-robot-reaper', ...env });

const H = 3_600_000;
const OWNED = ownerLabels();
const DEFAULTS = load({}).policy;
const hoursAgo = (h: number) => new Date(Date.now() - h * H);

async function jobNames(kc: KubeConfig, namespace: string): Promise<string[]> {
  return (await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace })).items.map((j) => j.metadata!.name!).sort();
}

/** Until the API server no longer lists `gone` (deletion is immediate for Jobs without finalizers, but be patient). */
async function settled(kc: KubeConfig, namespace: string, expected: string[]): Promise<void> {
  await eventually(async () => JSON.stringify(await jobNames(kc, namespace)) === JSON.stringify([...expected].sort()), 30_000, `Jobs to be ${expected}`);
}

function populate(kc: KubeConfig, namespace: string, spec: Array<[string, Outcome, Date]>): Promise<void> {
  return inParallel(spec, 16, ([name, outcome, at]) => createFinishedJob(kc, namespace, name, outcome, at, OWNED));
}

describe('reaper on the real control plane: safety and operations, as job-robot', function () {
  this.timeout(120_000);
  const ns = useNamespace('reap-safe');
  let robot: KubeConfig;

  before(async function () {
    await applyManifests(ns.kc, readRepoFile('config/rbac.yaml'), ns.name);
    robot = await serviceAccountConfig(ns.kc, ns.name, 'job-robot');
  });

  afterEach(async function () {
    await ns.kc.makeApiClient(BatchV1Api).deleteCollectionNamespacedJob({ namespace: ns.name, body: { propagationPolicy: 'Background' } });
    await settled(ns.kc, ns.name, []);
  });

  const rests: KubeRest[] = [];
  after(function () {
    for (const rest of rests.splice(0)) rest.close();
  });
  /** kube/rest.ts as `kc`, as the function calls the API server; closed after the tests. */
  const restAs = (kc: KubeConfig): KubeRest => {
    const rest = restOf(kc, 10_000);
    rests.push(rest);
    return rest;
  };
  const reaper = (kc: KubeConfig, extra: Partial<ConstructorParameters<typeof Reaper>[1]> = {}, api?: JobsApi) =>
    new Reaper(api ?? restJobs(restAs(kc)), { namespace: ns.name, policy: DEFAULTS, concurrency: 5, pageSize: 25, ...extra });

  it('two concurrent reaps end in the same state as one, without errors', async function () {
    const expired = Array.from({ length: 60 }, (_, i): [string, Outcome, Date] => [`old-${i}`, i % 4 ? 'Complete' : 'Failed', hoursAgo(30 + i / 60)]);
    const fresh: Array<[string, Outcome, Date]> = [
      ['fresh-s', 'Complete', hoursAgo(0.5)],
      ['fresh-f', 'Failed', hoursAgo(2)],
    ];
    await populate(ns.kc, ns.name, [...expired, ...fresh]);
    // the reference, what one reap would delete: 45 old succeeded, and 11 of the 15 old failed (the
    // default keeps the 5 newest failed: fresh-f and 4 old ones)
    const one = await reaper(robot).run({ dryRun: true });
    const survivors = (await jobNames(ns.kc, ns.name)).filter((n) => !one.wouldDelete!.some((w) => w.job === n));
    expect(one.expired).to.equal(56);

    // Two reapers with their own clients, as two pods woken by the same ping. Whatever the
    // interleaving, each Job is deleted once, the other run finds it gone, and the survivors are the
    // same as after one run: deleting expired Jobs never changes which ones are the newest.
    const [first, second] = [reaper(robot), reaper(await serviceAccountConfig(ns.kc, ns.name, 'job-robot'))];
    const [a, b] = await Promise.all([first.run(), second.run()]);
    for (const s of [a, b]) {
      expect(s.errors, JSON.stringify(s.failures)).to.equal(0);
      expect(s.deleted + s.alreadyGone).to.equal(s.expired);
    }
    expect(a.deleted + b.deleted).to.equal(56);
    expect(a.alreadyGone + b.alreadyGone, 'the two runs did not overlap').to.be.greaterThan(0);
    await settled(ns.kc, ns.name, survivors);
  });

  it('keep-newest counts hold, run after run', async function () {
    // succeeded: keep 2 newest; failed: the default 5 newest. All past their max age.
    const spec: Array<[string, Outcome, Date]> = [
      ...[1, 2, 3, 4].map((i): [string, Outcome, Date] => [`s-${i}`, 'Complete', hoursAgo(1 + i)]),
      ...[1, 2, 3, 4, 5, 6, 7, 8].map((i): [string, Outcome, Date] => [`f-${i}`, 'Failed', hoursAgo(24 + i)]),
    ];
    await populate(ns.kc, ns.name, spec);
    const policy = load({ REAPER_SUCCEEDED_KEEP: '2' }).policy;
    const first = await reaper(robot, { policy, pageSize: 3 }).run();
    expect(first).to.deep.include({ examined: 12, deleted: 5, errors: 0 });
    expect(first.kept.newest).to.equal(7);
    const kept = ['f-1', 'f-2', 'f-3', 'f-4', 'f-5', 's-1', 's-2'];
    await settled(ns.kc, ns.name, kept);
    const second = await reaper(robot, { policy }).run();
    expect(second).to.deep.include({ examined: 7, deleted: 0, expired: 0 });
    await settled(ns.kc, ns.name, kept);
  });

  it('the uid precondition protects a Job recreated under the same name after the list', async function () {
    await populate(ns.kc, ns.name, [['reused', 'Complete', hoursAgo(5)]]);
    const admin = ns.kc.makeApiClient(BatchV1Api);
    const jobs = restJobs(restAs(robot));
    let newUid = '';
    // Between the reaper's list and its delete, someone deletes the Job and creates a new one, still running.
    const racing: JobsApi = {
      listJobs: async (namespace, page) => {
        const list = await jobs.listJobs(namespace, page);
        await admin.deleteNamespacedJob({ name: 'reused', namespace: ns.name, body: { propagationPolicy: 'Background' } });
        await eventually(async () => !(await jobNames(ns.kc, ns.name)).includes('reused'));
        newUid = (await admin.createNamespacedJob({ namespace: ns.name, body: plainJob('reused', { labels: OWNED }) })).metadata!.uid!;
        return list;
      },
      deleteJob: (namespace, name, body) => jobs.deleteJob(namespace, name, body),
    };
    const s = await reaper(robot, {}, racing).run();
    expect(s).to.deep.include({ expired: 1, deleted: 0, alreadyGone: 1, errors: 0 });
    const survivor = await admin.readNamespacedJob({ name: 'reused', namespace: ns.name });
    expect(survivor.metadata!.uid).to.equal(newUid);
    expect(survivor.metadata!.deletionTimestamp).to.equal(undefined);
  });

  describe('permissions', function () {
    let unbound: KubeConfig;
    let lister: KubeConfig;

    before(async function () {
      const core = ns.kc.makeApiClient(CoreV1Api);
      for (const name of ['unbound', 'lister']) await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name } } });
      await grantRole(ns.kc, ns.name, 'lister', 'list-jobs', [{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list'] }]);
      unbound = await serviceAccountConfig(ns.kc, ns.name, 'unbound');
      lister = await serviceAccountConfig(ns.kc, ns.name, 'lister');
    });

    it('without the RoleBinding a run fails with the API server\u2019s refusal and the fix', async function () {
      const err = await rejection(reaper(unbound).run());
      expect(err).to.be.instanceOf(Misconfigured);
      const e = err as Misconfigured;
      expect(e.reason).to.equal('forbidden');
      expect(e.message).to.contain(`may not list jobs.batch in namespace ${ns.name}`);
      expect(e.message).to.contain(`User "system:serviceaccount:${ns.name}:unbound" cannot list resource "jobs" in API group "batch"`);
      expect(e.fix).to.equal(`grant list jobs.batch in namespace ${ns.name}: kubectl apply -n ${ns.name} -f config/rbac.yaml`);
    });

    it('list granted but delete refused: the run stops at the first refusal, naming delete, and deletes nothing', async function () {
      await populate(ns.kc, ns.name, Array.from({ length: 20 }, (_, i): [string, Outcome, Date] => [`old-${i}`, 'Complete', hoursAgo(3)]));
      const err = await rejection(reaper(lister, { concurrency: 2 }).run());
      expect(err).to.be.instanceOf(Misconfigured);
      expect((err as Misconfigured).fix).to.equal(`grant delete jobs.batch in namespace ${ns.name}: kubectl apply -n ${ns.name} -f config/rbac.yaml`);
      expect(await jobNames(ns.kc, ns.name)).to.have.length(20);
    });

    it('the start-up check keeps readiness false and names list and delete until they are granted', async function () {
      const health = new Health([PERMISSIONS_CHECK]);
      expect(await new AccessWatch(restAs(unbound), ns.name, health, createLogger('silent')).check()).to.equal(false);
      expect(health.report()).to.deep.include({
        ready: false,
        failing: { [PERMISSIONS_CHECK]: `grant list jobs.batch, delete jobs.batch in namespace ${ns.name}: kubectl apply -n ${ns.name} -f config/rbac.yaml` },
      });
      expect(await new AccessWatch(restAs(lister), ns.name, health, createLogger('silent')).check()).to.equal(false);
      expect(health.report().failing[PERMISSIONS_CHECK]).to.match(/^grant delete jobs\.batch in/);
      expect(await new AccessWatch(restAs(robot), ns.name, health, createLogger('silent')).check()).to.equal(true);
      expect(health.ready).to.equal(true);
    });
  });

  describe('the HTTP function', function () {
    it('a PingSource event reaps as job-robot and answers 200 with the summary', async function () {
      await populate(ns.kc, ns.name, [
        ['old', 'Complete', hoursAgo(2)],
        ['young', 'Complete', hoursAgo(0.1)],
      ]);
      const registry = createRegistry('reaper');
      const log = createLogger('silent');
      const runs = new Runs({ reaper: reaper(robot), metrics: new ReaperMetrics(registry), log });
      const server = await listen(reaperApp({ senders: admitAnyone, runs, health: new Health(), registry, log }), 0, '127.0.0.1');
      try {
        const res = await fetch(`http://127.0.0.1:${server.port}/`, {
          method: 'POST',
          headers: { 'ce-specversion': '1.0', 'ce-id': 'tick-1', 'ce-source': `/apis/v1/namespaces/${ns.name}/pingsources/reaper`, 'ce-type': PING_TYPE },
        });
        expect(res.status).to.equal(200);
        const s = (await res.json()) as ReapSummary;
        expect(s).to.deep.include({ namespace: ns.name, examined: 2, deleted: 1, errors: 0 });
        await settled(ns.kc, ns.name, ['young']);
      } finally {
        await server.close(100);
      }
    });
  });

  describe('job-robot reap (the operator CLI)', function () {
    let dir: string;
    before(function () {
      dir = mkdtempSync(join(tmpdir(), 'job-robot-reap-'));
    });
    after(function () {
      rmSync(dir, { recursive: true, force: true });
    });

    function cli(kc: KubeConfig, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
      const kubeconfig = join(dir, `${Math.random().toString(36).slice(2)}.kubeconfig`);
      writeFileSync(kubeconfig, kc.exportConfig(), { mode: 0o600 });
      return new Promise((resolve) => {
        execFile(
          process.execPath,
          [join(ROOT, 'function/cli.ts'), 'reap', ...args],
          { env: { ...process.env, KUBECONFIG: kubeconfig, NAMESPACE: ns.name, ...env } },
          (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    }

    it('--dry-run --json lists what would go and deletes nothing; a real run then deletes it', async function () {
      await populate(ns.kc, ns.name, [
        ['old-s', 'Complete', hoursAgo(2)],
        ['old-f', 'Failed', hoursAgo(30)],
      ]);
      const dry = await cli(robot, ['--dry-run', '--json'], { REAPER_FAILED_KEEP: '0' });
      expect(dry.code, dry.stderr).to.equal(0);
      const s = JSON.parse(dry.stdout) as ReapSummary;
      expect(s.wouldDelete!.map((w) => w.job).sort()).to.deep.equal(['old-f', 'old-s']);
      expect(await jobNames(ns.kc, ns.name)).to.deep.equal(['old-f', 'old-s']);

      const human = await cli(robot, ['--dry-run'], { REAPER_FAILED_KEEP: '0' });
      expect(human.stdout).to.match(/^would delete old-s \(succeeded, finished .*, 2h ago\)$/m);
      expect(human.stdout).to.contain('dry run: would delete 2, deleted nothing');

      const real = await cli(robot, [], { REAPER_FAILED_KEEP: '0' });
      expect(real.code, real.stderr).to.equal(0);
      expect(real.stdout).to.contain('deleted 2 (1 succeeded, 1 failed)');
      await settled(ns.kc, ns.name, []);
    });

    it('without permissions it exits 77 and prints the fix', async function () {
      const core = ns.kc.makeApiClient(CoreV1Api);
      await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'nobody' } } });
      const res = await cli(await serviceAccountConfig(ns.kc, ns.name, 'nobody'), ['--dry-run']);
      expect(res.code).to.equal(77);
      expect(res.stderr).to.contain(`fix: grant list jobs.batch in namespace ${ns.name}: kubectl apply -n ${ns.name} -f config/rbac.yaml`);
    });
  });
});
