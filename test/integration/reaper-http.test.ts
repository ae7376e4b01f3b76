/**
 * The reaper's HTTP answers on the real control plane: the function app in-process, its Reaper
 * acting as the job-robot ServiceAccount. What reaches the Jobs API is counted on the way through
 * (`Counted`); every answer comes from the API server, or, for an API server that is away, from a
 * fault proxy in front of it.
 */
import { expect } from 'chai';
import { BatchV1Api, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { Health } from '../../function/http/health.ts';
import { createRegistry } from '../../function/http/metrics.ts';
import { listen, type RunningServer } from '../../function/http/server.ts';
import { kubeFailure } from '../../function/kube/api-error.ts';
import { CallOptions } from '../../function/kube/call-options.ts';
import { restOf } from '../../function/kube/client.ts';
import { restJobs, type JobList, type JobsClient } from '../../function/kube/jobs-api.ts';
import { ownerLabels } from '../../function/kube/labels.ts';
import { createLogger } from '../../function/log.ts';
import { PING_TYPE, reaperApp } from '../../function/reaper/app.ts';
import { admitAnyone } from '../../function/auth/gate.ts';
import { ReaperMetrics } from '../../function/reaper/metrics.ts';
import type { KubeRest } from '../../function/kube/rest.ts';
import { Reaper, type JobDeletion, type JobsApi, type JobsPage } from '../../function/reaper/reap.ts';
import { Runs } from '../../function/reaper/runs.ts';
import type { ReapSummary } from '../../function/reaper/summary.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { createFinishedJob } from '../helpers/finished.ts';
import { applyManifests, eventually, serviceAccountConfig, useNamespace } from '../helpers/kube.ts';
import { readRepoFile } from '../helpers/paths.ts';

const H = 3_600_000;

/** The real Jobs API over kube/rest.ts, counting the calls that reach it; `gate` holds lists back until it resolves. */
class Counted implements JobsApi {
  lists = 0;
  deletes = 0;
  gate: Promise<void> = Promise.resolve();
  private readonly jobs: JobsClient;

  constructor(rest: KubeRest) {
    this.jobs = restJobs(rest);
  }

  async listJobs(namespace: string, page: JobsPage): Promise<JobList> {
    this.lists++;
    await this.gate;
    return this.jobs.listJobs(namespace, page);
  }

  deleteJob(namespace: string, name: string, body: JobDeletion): Promise<void> {
    this.deletes++;
    return this.jobs.deleteJob(namespace, name, body);
  }
}

const ping = (extra: Record<string, string> = {}) => ({
  'ce-specversion': '1.0',
  'ce-id': 'ping-1',
  'ce-source': '/apis/v1/namespaces/jobs/pingsources/job-robot-reaper',
  'ce-type': PING_TYPE,
  ...extra,
});

describe('reaper HTTP function on the real control plane, as job-robot', function () {
  this.timeout(60_000);
  const ns = useNamespace('reap-http');
  let robot: KubeConfig;
  const calls = new CallOptions(10_000);

  let api: Counted;
  let server: RunningServer | undefined;
  /** The served Reaper's connections, as the function's: one pool, a deadline on every call. */
  let rest: KubeRest | undefined;
  let base: string;
  let health: Health;
  let forbidden: string[];

  const batch = () => ns.kc.makeApiClient(BatchV1Api);
  const jobNames = async () => (await batch().listNamespacedJob({ namespace: ns.name })).items.map((j) => j.metadata!.name!).sort();
  const settled = (expected: string[]) =>
    eventually(async () => JSON.stringify(await jobNames()) === JSON.stringify(expected), 30_000, `Jobs to be [${expected.join(', ')}]`);

  /** Serves the reaper app for a Reaper acting as `kc`. */
  async function serve(kc: KubeConfig): Promise<void> {
    rest = restOf(kc, 10_000);
    api = new Counted(rest);
    forbidden = [];
    health = new Health();
    const registry = createRegistry('reaper');
    const log = createLogger('silent');
    const reaper = new Reaper(api, {
      namespace: ns.name,
      policy: { succeeded: { maxAgeMs: H, keep: 0 }, failed: { maxAgeMs: 24 * H, keep: 0 } },
      concurrency: 2,
      pageSize: 10,
      retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    const runs = new Runs({ reaper, metrics: new ReaperMetrics(registry), log, onForbidden: (fix) => forbidden.push(fix) });
    const running = await listen(reaperApp({ senders: admitAnyone, runs, health, registry, log }), 0, '127.0.0.1');
    server = running;
    base = `http://127.0.0.1:${running.port}`;
  }

  before(async function () {
    await applyManifests(ns.kc, readRepoFile('config/rbac.yaml'), ns.name);
    robot = await serviceAccountConfig(ns.kc, ns.name, 'job-robot');
  });
  beforeEach(async function () {
    await createFinishedJob(ns.kc, ns.name, 'old', 'Complete', new Date(Date.now() - 2 * H), ownerLabels(), calls);
    await createFinishedJob(ns.kc, ns.name, 'new', 'Complete', new Date(Date.now() - 60_000), ownerLabels(), calls);
  });
  afterEach(async function () {
    await server?.close(100);
    server = undefined;
    rest?.close();
    rest = undefined;
    await batch().deleteCollectionNamespacedJob({ namespace: ns.name, body: { propagationPolicy: 'Background' } });
    await settled([]);
  });
  after(async function () {
    await calls.close();
  });

  const post = (headers: Record<string, string>, body = '') => fetch(`${base}/`, { method: 'POST', headers, body });

  describe('as job-robot', function () {
    beforeEach(async function () {
      await serve(robot);
    });

    it('a binary-mode ping runs the reaper and answers 200 with the summary', async function () {
      const res = await post(ping());
      expect(res.status).to.equal(200);
      const s = (await res.json()) as ReapSummary;
      expect(s).to.deep.include({ namespace: ns.name, examined: 2, expired: 1, deleted: 1, errors: 0, dryRun: false });
      await settled(['new']);
    });

    it('a structured-mode ping with PingSource JSON data works too', async function () {
      const event = { specversion: '1.0', id: 'p2', source: '/ping', type: PING_TYPE, datacontenttype: 'application/json', data: { note: 'hourly' } };
      const res = await post({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(event));
      expect(res.status).to.equal(200);
      expect(((await res.json()) as ReapSummary).deleted).to.equal(1);
      await settled(['new']);
    });

    it('any other event type is 400 and reaps nothing', async function () {
      const res = await post(ping({ 'ce-type': 'dev.job-robot.queue.item', 'content-type': 'application/json' }), '{}');
      expect(res.status).to.equal(400);
      expect(await res.json()).to.deep.include({ error: 'unexpected-type', type: 'dev.job-robot.queue.item' });
      expect(api.lists).to.equal(0);
      expect(await jobNames()).to.deep.equal(['new', 'old']);
    });

    it('a batch with one non-ping event is 400 and reaps nothing', async function () {
      const events = [
        { specversion: '1.0', id: 'a', source: '/ping', type: PING_TYPE },
        { specversion: '1.0', id: 'b', source: '/x', type: 'other' },
      ];
      const res = await post({ 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(events));
      expect(res.status).to.equal(400);
      expect(api.lists).to.equal(0);
    });

    it('a request that is not a CloudEvent is 415; a ping without an id is 400', async function () {
      expect((await post({ 'content-type': 'application/json' }, '{}')).status).to.equal(415);
      const noId: Record<string, string> = ping();
      delete noId['ce-id'];
      expect((await post(noId)).status).to.equal(400);
      expect(api.lists).to.equal(0);
    });

    it('overlapping pings share one run and get the same summary', async function () {
      let release!: () => void;
      api.gate = new Promise<void>((r) => (release = r));
      const first = post(ping({ 'ce-id': 'p-1' }));
      await eventually(async () => api.lists === 1, 5_000, 'the first run to list');
      const second = post(ping({ 'ce-id': 'p-2' }));
      await new Promise((r) => setTimeout(r, 100));
      release();
      const [a, b] = await Promise.all([first, second]);
      expect([a.status, b.status]).to.deep.equal([200, 200]);
      const [sa, sb] = (await Promise.all([a.json(), b.json()])) as ReapSummary[];
      expect(sa).to.deep.equal(sb);
      expect(sa).to.deep.include({ deleted: 1, alreadyGone: 0 });
      expect(api.lists).to.equal(1);
      expect(api.deletes).to.equal(1);
    });

    it('a ping after a run has finished starts a new run', async function () {
      expect(((await (await post(ping())).json()) as ReapSummary).deleted).to.equal(1);
      const again = (await (await post(ping({ 'ce-id': 'ping-2' }))).json()) as ReapSummary;
      expect(again).to.deep.include({ examined: 1, deleted: 0 });
      expect(api.lists).to.equal(2);
    });

    it('health endpoints answer; readiness follows the checks', async function () {
      expect((await fetch(`${base}/health/liveness`)).status).to.equal(200);
      expect((await fetch(`${base}/health/readiness`)).status).to.equal(200);
      health.fail('permissions', 'grant delete jobs.batch');
      const res = await fetch(`${base}/health/readiness`);
      expect(res.status).to.equal(503);
      expect(await res.json()).to.deep.include({ failing: { permissions: 'grant delete jobs.batch' } });
    });
  });

  it('403 from the API server is 500 with the fix, and readiness is told', async function () {
    await ns.kc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'unbound' } } });
    await serve(await serviceAccountConfig(ns.kc, ns.name, 'unbound'));
    const res = await post(ping());
    expect(res.status).to.equal(500);
    const body = (await res.json()) as { error: string; message: string };
    expect(body.error).to.equal('forbidden');
    expect(body.message).to.contain(`may not list jobs.batch in namespace ${ns.name}`);
    expect(body.message).to.contain(`User "system:serviceaccount:${ns.name}:unbound" cannot list resource "jobs"`);
    expect(forbidden).to.deep.equal([`grant list jobs.batch in namespace ${ns.name}: kubectl apply -n ${ns.name} -f config/rbac.yaml`]);
    expect(await jobNames()).to.deep.equal(['new', 'old']);
  });

  it('metrics: runs, deleted, kept, errors and duration; a grant revoked between runs counts as a failed run', async function () {
    const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
    await applyManifests(
      ns.kc,
      [
        'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: revoked}',
        'apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: revoked}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: job-robot}\nsubjects: [{kind: ServiceAccount, name: revoked}]',
      ].join('\n---\n'),
      ns.name,
    );
    const revoked = await serviceAccountConfig(ns.kc, ns.name, 'revoked');
    await serve(revoked);
    expect((await post(ping())).status).to.equal(200);

    await rbac.deleteNamespacedRoleBinding({ name: 'revoked', namespace: ns.name });
    await eventually(async () => {
      try {
        await revoked.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns.name, limit: 1 });
        return false;
      } catch (err) {
        return kubeFailure(err).code === 403;
      }
    }, 10_000, 'the revoked grant to take effect');
    expect((await post(ping({ 'ce-id': 'ping-2' }))).status).to.equal(500);

    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).to.match(/job_robot_reaper_runs_total\{outcome="ok",dry_run="false",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_runs_total\{outcome="failed",dry_run="false",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_jobs_deleted_total\{class="succeeded",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_jobs_kept_total\{reason="within-max-age",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_errors_total\{stage="run",reason="forbidden",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_run_duration_seconds_count\{component="reaper",outcome="ok"\} 1/);
    expect(text).to.match(/job_robot_reaper_run_duration_seconds_count\{component="reaper",outcome="failed"\} 1/);
  });

  it('an API server that is away (503 with Retry-After, through a fault proxy) is 503 with its Retry-After', async function () {
    const proxy = await new FaultProxy(ns.kc).start();
    try {
      proxy.rules = [
        {
          method: 'GET',
          path: new RegExp(`^/apis/batch/v1/namespaces/${ns.name}/jobs$`),
          fault: {
            status: 503,
            headers: { 'retry-after': '7' },
            body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 503, reason: 'ServiceUnavailable', message: 'etcd unavailable', details: { retryAfterSeconds: 7 } },
          },
        },
      ];
      await serve(proxy.through(robot));
      const res = await post(ping());
      expect(res.status).to.equal(503);
      expect(res.headers.get('retry-after')).to.equal('7');
      expect(((await res.json()) as { error: string }).error).to.equal('api-unavailable');
      expect(await jobNames()).to.deep.equal(['new', 'old']);
    } finally {
      await proxy.stop();
    }
  });
});
