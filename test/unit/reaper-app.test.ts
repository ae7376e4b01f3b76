import { expect } from 'chai';
import { Health } from '../../function/http/health.ts';
import { createRegistry } from '../../function/http/metrics.ts';
import { listen, type RunningServer } from '../../function/http/server.ts';
import { createLogger } from '../../function/log.ts';
import { PING_TYPE, reaperApp } from '../../function/reaper/app.ts';
import { ReaperMetrics } from '../../function/reaper/metrics.ts';
import { Reaper } from '../../function/reaper/reap.ts';
import { Runs } from '../../function/reaper/runs.ts';
import type { ReapSummary } from '../../function/reaper/summary.ts';
import { FakeJobs, NOW, apiError, finished } from '../helpers/fake-jobs.ts';

const H = 3_600_000;

const ping = (extra: Record<string, string> = {}) => ({
  'ce-specversion': '1.0',
  'ce-id': 'ping-1',
  'ce-source': '/apis/v1/namespaces/jobs/pingsources/job-robot-reaper',
  'ce-type': PING_TYPE,
  ...extra,
});

describe('reaper HTTP function (fake API server)', function () {
  let api: FakeJobs;
  let server: RunningServer;
  let base: string;
  let health: Health;
  let forbidden: string[];
  let registry: ReturnType<typeof createRegistry>;

  beforeEach(async function () {
    api = new FakeJobs([finished('old', 2 * H), finished('new', 60_000)]);
    forbidden = [];
    health = new Health();
    registry = createRegistry('reaper');
    const log = createLogger('silent');
    const reaper = new Reaper(api, {
      namespace: 'ns',
      policy: { succeeded: { maxAgeMs: H, keep: 0 }, failed: { maxAgeMs: 24 * H, keep: 0 } },
      concurrency: 2,
      pageSize: 10,
      now: () => NOW,
      retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    const runs = new Runs({ reaper, metrics: new ReaperMetrics(registry), log, onForbidden: (fix) => forbidden.push(fix) });
    server = await listen(reaperApp({ runs, health, registry, log }), 0, '127.0.0.1');
    base = `http://127.0.0.1:${server.port}`;
  });

  afterEach(async function () {
    await server.close(100);
  });

  const post = (headers: Record<string, string>, body = '') => fetch(`${base}/`, { method: 'POST', headers, body });

  it('a binary-mode ping runs the reaper and answers 200 with the summary', async function () {
    const res = await post(ping());
    expect(res.status).to.equal(200);
    const s = (await res.json()) as ReapSummary;
    expect(s).to.deep.include({ namespace: 'ns', examined: 2, expired: 1, deleted: 1, errors: 0, dryRun: false });
    expect(api.jobs.map((j) => j.metadata!.name)).to.deep.equal(['new']);
  });

  it('a structured-mode ping with PingSource JSON data works too', async function () {
    const event = { specversion: '1.0', id: 'p2', source: '/ping', type: PING_TYPE, datacontenttype: 'application/json', data: { note: 'hourly' } };
    const res = await post({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(event));
    expect(res.status).to.equal(200);
  });

  it('any other event type is 400 and reaps nothing', async function () {
    const res = await post(ping({ 'ce-type': 'dev.job-robot.queue.item', 'content-type': 'application/json' }), '{}');
    expect(res.status).to.equal(400);
    expect(await res.json()).to.deep.include({ error: 'unexpected-type', type: 'dev.job-robot.queue.item' });
    expect(api.lists).to.have.length(0);
  });

  it('a batch with one non-ping event is 400', async function () {
    const events = [
      { specversion: '1.0', id: 'a', source: '/ping', type: PING_TYPE },
      { specversion: '1.0', id: 'b', source: '/x', type: 'other' },
    ];
    const res = await post({ 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(events));
    expect(res.status).to.equal(400);
    expect(api.lists).to.have.length(0);
  });

  it('a request that is not a CloudEvent is 415; a ping without an id is 400', async function () {
    expect((await post({ 'content-type': 'application/json' }, '{}')).status).to.equal(415);
    const noId: Record<string, string> = ping();
    delete noId['ce-id'];
    expect((await post(noId)).status).to.equal(400);
    expect(api.lists).to.have.length(0);
  });

  it('overlapping pings share one run and get the same summary', async function () {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    api.onList = () => gate;
    const first = post(ping({ 'ce-id': 'p-1' }));
    const second = post(ping({ 'ce-id': 'p-2' }));
    await new Promise((r) => setTimeout(r, 50));
    release();
    const [a, b] = await Promise.all([first, second]);
    expect([a.status, b.status]).to.deep.equal([200, 200]);
    expect(await a.json()).to.deep.equal(await b.json());
    expect(api.lists).to.have.length(1);
    expect(api.deletes).to.have.length(1);
  });

  it('a ping after a run has finished starts a new run', async function () {
    await post(ping());
    await post(ping());
    expect(api.lists).to.have.length(2);
  });

  it('403 from the API server is 500 with the fix, and readiness is told', async function () {
    api.onList = () => {
      throw apiError(403, 'Forbidden', 'jobs.batch is forbidden: cannot list resource "jobs"');
    };
    const res = await post(ping());
    expect(res.status).to.equal(500);
    const body = (await res.json()) as { error: string; message: string };
    expect(body.error).to.equal('forbidden');
    expect(body.message).to.contain('may not list Jobs in namespace ns');
    expect(forbidden).to.deep.equal(['grant list jobs.batch in namespace ns: kubectl apply -n ns -f config/rbac.yaml']);
  });

  it('an API server that is away is 503 with Retry-After', async function () {
    api.onList = () => {
      throw apiError(503, 'ServiceUnavailable', 'etcd unavailable', { details: { retryAfterSeconds: 7 } });
    };
    const res = await post(ping());
    expect(res.status).to.equal(503);
    expect(res.headers.get('retry-after')).to.equal('7');
  });

  it('metrics: runs, deleted, errors and duration', async function () {
    await post(ping());
    api.onList = () => {
      throw apiError(403, 'Forbidden', 'no');
    };
    await post(ping());
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).to.match(/job_robot_reaper_runs_total\{outcome="ok",dry_run="false",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_runs_total\{outcome="failed",dry_run="false",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_jobs_deleted_total\{class="succeeded",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_errors_total\{stage="run",reason="forbidden",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_run_duration_seconds_count\{component="reaper",outcome="ok"\} 1/);
    expect(text).to.match(/job_robot_reaper_jobs_kept_total\{reason="within-max-age",component="reaper"\} 1/);
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
