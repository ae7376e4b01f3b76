/**
 * The reaper as the results' backstop, on the real control plane and a real redis-server: a Job of
 * the bridge's queue goes only once its result is final in Redis. The Jobs are the ones the
 * launcher builds for an event, finished through the status subresource as the job controller
 * would finish them; the results are read back with the queue's own Results and the results stream.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { BatchV1Api, type V1Job } from '@kubernetes/client-node';
import { createRegistry } from '../../function/http/metrics.ts';
import { restOf } from '../../function/kube/client.ts';
import { sourceUrl } from '../../function/kube/event-source.ts';
import { restJobs, type JobsClient } from '../../function/kube/jobs-api.ts';
import type { KubeRest } from '../../function/kube/rest.ts';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION, ownerLabels } from '../../function/kube/labels.ts';
import { buildJob } from '../../function/launcher/job.ts';
import type { RedisTarget } from '../../function/queue/connection.ts';
import { queueKeys, type QueueKeys } from '../../function/queue/keys.ts';
import { Results } from '../../function/queue/results.ts';
import { loadReaperConfig } from '../../function/reaper/config.ts';
import { ReaperMetrics } from '../../function/reaper/metrics.ts';
import type { Policy } from '../../function/reaper/policy.ts';
import { Reaper, type ReaperOptions } from '../../function/reaper/reap.ts';
import { QueueResults } from '../../function/reaper/results.ts';
import type { ReapSummary } from '../../function/reaper/summary.ts';
import { createFinishedJob, finishedStatusPatch, type Outcome } from '../helpers/finished.ts';
import { plainJob } from '../helpers/jobs.ts';
import { adminKubeconfigPath, useNamespace } from '../helpers/kube.ts';
import { ROOT } from '../helpers/paths.ts';
import { uniquePrefix, usePrivateRedis } from '../helpers/redis.ts';

const H = 3_600_000;
/** Finished an hour ago: past a 1 s retention; `young` Jobs are within a 24 h one. */
const POLICY: Policy = { succeeded: { maxAgeMs: 1000, keep: 0 }, failed: { maxAgeMs: 1000, keep: 0 } };
const AN_HOUR_AGO = () => new Date(Date.now() - H);
const load = (env: NodeJS.ProcessEnv) => loadReaperConfig({ K_SERVICE: 'job-robot-reaper', ...env });

describe('reaper: the results backstop (real Redis, real API server)', function () {
  this.timeout(60_000);
  const ns = useNamespace('reap-results');
  const r = usePrivateRedis();
  const stores: QueueResults[] = [];
  let keys: QueueKeys;
  let batch: BatchV1Api;
  /** What the reaper lists and deletes through, as the function's (kube/rest.ts). */
  let jobs: JobsClient;
  let rest: KubeRest | undefined;

  before(function () {
    batch = ns.kc.makeApiClient(BatchV1Api);
    rest = restOf(ns.kc, 10_000);
    jobs = restJobs(rest);
  });
  after(function () {
    rest?.close();
  });
  beforeEach(function () {
    keys = queueKeys(`${uniquePrefix('results')}queue`);
  });
  afterEach(async function () {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await batch.deleteCollectionNamespacedJob({ namespace: ns.name, propagationPolicy: 'Background' });
  });

  const target = (port = r.server.port): RedisTarget => ({ kind: 'standalone', host: '127.0.0.1', port, db: 0, tls: false });
  const source = () => sourceUrl(target(), keys.queue);
  const results = () => new Results(r.redis, keys);

  /** The results store as the reaper process builds it from the bridge's variables. */
  function store(env: Record<string, string> = {}, overrides = {}): QueueResults {
    const config = load({ REDIS_URL: `redis://127.0.0.1:${r.server.port}/0`, QUEUE_KEY: keys.queue, ...env });
    expect(config.queue, 'a Redis address turns the backstop on').to.not.equal(undefined);
    const s = new QueueResults(config.queue!, config.results, overrides);
    stores.push(s);
    return s;
  }

  /** The Job the launcher makes for event (source, id), finished as `outcome` at `at`. */
  async function finishedJobFor(id: string, outcome: Outcome = 'Complete', at = AN_HOUR_AGO(), from = source()): Promise<V1Job> {
    const job = buildJob(plainJob('template'), { prefix: 'results-', ttlSeconds: 86_400, serviceAccount: 'job-robot-job' }, { source: from, id, type: 't', env: [] });
    job.spec!.suspend = true;
    const created = await batch.createNamespacedJob({ namespace: ns.name, body: job });
    return batch.patchNamespacedJobStatus({ name: created.metadata!.name!, namespace: ns.name, body: finishedStatusPatch(outcome, at) });
  }

  const reap = (options: Partial<ReaperOptions> = {}, dryRun = false): Promise<ReapSummary> =>
    new Reaper(jobs, { namespace: ns.name, policy: POLICY, concurrency: 4, pageSize: 50, ...options }).run({ dryRun });

  async function names(): Promise<string[]> {
    return (await batch.listNamespacedJob({ namespace: ns.name })).items.map((j) => j.metadata!.name!).sort();
  }

  /** The ids of the results stream's entries, in order. */
  async function streamIds(): Promise<string[]> {
    return (await r.redis.xrange(keys.results, '-', '+')).map(([, fields]) => fields[fields.indexOf('id') + 1]!);
  }

  it('a Redis that does not answer: the finished Job without a recorded result stays, Jobs with nothing to record go', async function () {
    const mine = await finishedJobFor('item-1', 'Failed');
    const other = await finishedJobFor('item-1', 'Complete', AN_HOUR_AGO(), '/some/other/source');
    await createFinishedJob(ns.kc, ns.name, 'bare', 'Complete', AN_HOUR_AGO(), ownerLabels());
    // A port nothing listens on: every read fails; only the first waits for it.
    const config = load({ REDIS_URL: 'redis://127.0.0.1:1/0', QUEUE_KEY: keys.queue, EVENT_SOURCE: source() });
    const dead = new QueueResults(config.queue!, config.results, { commandTimeout: 1_000, retryStrategy: () => 200 });
    stores.push(dead);

    const s = await reap({ results: dead });
    expect(s.kept['result-unrecorded']).to.equal(1);
    expect(s.results).to.deep.equal({ recorded: { succeeded: 0, failed: 0 }, withoutEvent: 1, otherSource: 1, unavailable: true });
    expect(s.deleted, 'the other source’s Job and the one without annotations').to.equal(2);
    expect(s.expired + Object.values(s.kept).reduce((a, b) => a + b, 0)).to.equal(s.examined);
    expect(await names()).to.deep.equal([mine.metadata!.name]);
    expect(other.metadata!.name).to.not.equal(mine.metadata!.name);
  });

  it('a Redis that refuses the write (an ACL without scripts) keeps the Job too', async function () {
    const mine = await finishedJobFor('item-1', 'Complete');
    await r.redis.call('ACL', 'SETUSER', 'no-scripts', 'on', '>secret', '~*', '+@all', '-@scripting');
    try {
      const s = await reap({ results: store({ REDIS_URL: `redis://no-scripts:secret@127.0.0.1:${r.server.port}/0` }) });
      expect(s.kept['result-unrecorded']).to.equal(1);
      expect(s.results!.unavailable).to.equal(true);
      expect(s.deleted).to.equal(0);
      expect(await names()).to.deep.equal([mine.metadata!.name]);
      expect(await results().get('item-1')).to.equal(undefined);
    } finally {
      await r.redis.call('ACL', 'DELUSER', 'no-scripts');
    }
  });

  it('records the missing results from the Jobs (state and the condition’s reason), then deletes them', async function () {
    const failed = await finishedJobFor('item-f', 'Failed');
    const done = await finishedJobFor('item-s', 'Complete');
    const registry = createRegistry('reaper');
    const metrics = new ReaperMetrics(registry);

    const s = await reap({ results: store() });
    metrics.completed(s);
    expect(s.results).to.deep.include({ recorded: { succeeded: 1, failed: 1 }, unavailable: false });
    expect(s.deleted).to.equal(2);
    expect(await names()).to.deep.equal([]);

    const f = await results().get('item-f');
    expect(f).to.deep.include({ id: 'item-f', state: 'failed', reason: 'BackoffLimitExceeded', source: source(), job: failed.metadata!.name });
    expect(Date.parse(f!.finished!), 'the Failed condition’s time').to.be.closeTo(AN_HOUR_AGO().getTime(), 60_000);
    expect(f!.created, 'the Job’s creation time').to.be.a('string');
    expect(await results().get('item-s')).to.deep.include({ state: 'succeeded', reason: 'CompletionsReached', job: done.metadata!.name });
    expect((await streamIds()).sort()).to.deep.equal(['item-f', 'item-s']);
    const text = await registry.metrics();
    expect(text).to.match(/job_robot_reaper_results_recorded_total\{state="failed",component="reaper"\} 1/);
    expect(text).to.match(/job_robot_reaper_results_recorded_total\{state="succeeded",component="reaper"\} 1/);
  });

  it('a result already final is left as it is: the Job is deleted without a second results-stream entry', async function () {
    await finishedJobFor('item-1', 'Complete');
    // The Broker gave up on the event, yet its Job ran: the first final state stays.
    await results().record([{ id: 'item-1', state: 'dead-lettered', reason: 'broker gave up' }]);
    const s = await reap({ results: store() });
    expect(s.deleted).to.equal(1);
    expect(s.results!.recorded).to.deep.equal({ succeeded: 0, failed: 0 });
    expect(await streamIds()).to.deep.equal(['item-1']);
    expect(await results().get('item-1')).to.deep.include({ state: 'dead-lettered', reason: 'broker gave up' });
  });

  it('a record that is not final yet (created) is moved to the Job’s final state before the Job goes', async function () {
    const job = await finishedJobFor('item-1', 'Failed');
    await results().record([{ id: 'item-1', state: 'created', job: job.metadata!.name, source: source() }]);
    const s = await reap({ results: store() });
    expect(s.results!.recorded.failed).to.equal(1);
    expect(s.deleted).to.equal(1);
    expect(await results().get('item-1')).to.deep.include({ state: 'failed', reason: 'BackoffLimitExceeded' });
  });

  it('within their retention, finished Jobs get their results recorded and stay; a running Job gets none', async function () {
    const young = await finishedJobFor('young', 'Complete', new Date(Date.now() - 60_000));
    const running = buildJob(plainJob('template'), { prefix: 'results-', ttlSeconds: 86_400, serviceAccount: 'job-robot-job' }, { source: source(), id: 'running', type: 't', env: [] });
    running.spec!.suspend = true;
    await batch.createNamespacedJob({ namespace: ns.name, body: running });
    const longRetention: Policy = { succeeded: { maxAgeMs: 24 * H, keep: 0 }, failed: { maxAgeMs: 24 * H, keep: 0 } };

    const first = await reap({ results: store(), policy: longRetention });
    expect(first.results!.recorded).to.deep.equal({ succeeded: 1, failed: 0 });
    expect(first.deleted).to.equal(0);
    expect(first.kept['within-max-age']).to.equal(1);
    expect(await results().get('young')).to.deep.include({ state: 'succeeded', job: young.metadata!.name });
    expect(await results().get('running')).to.equal(undefined);

    const second = await reap({ results: store(), policy: longRetention });
    expect(second.results!.recorded, 'recorded once').to.deep.equal({ succeeded: 0, failed: 0 });
    expect(await streamIds()).to.deep.equal(['young']);
    expect((await names()).length).to.equal(2);
  });

  it('a dry run reads and records nothing, and still lists the Job as one it would delete', async function () {
    const job = await finishedJobFor('item-1', 'Complete');
    const s = await reap({ results: store() }, true);
    expect(s.wouldDelete!.map((w) => w.job)).to.deep.equal([job.metadata!.name]);
    expect(s.results!.recorded).to.deep.equal({ succeeded: 0, failed: 0 });
    expect(await r.redis.exists(keys.result('item-1'), keys.results)).to.equal(0);
    expect(await names()).to.deep.equal([job.metadata!.name]);
  });

  it('a Job pushed out of the keep-newest slots on a later page: its result is checked again there, and recorded again if it went missing', async function () {
    const keepOne: Policy = { succeeded: { maxAgeMs: 1000, keep: 0 }, failed: { maxAgeMs: 1000, keep: 1 } };
    const annotations = (id: string) => ({ [EVENT_ID_ANNOTATION]: id, [EVENT_SOURCE_ANNOTATION]: source() });
    // Listed in name order, one per page: the older failure holds the slot until the newer one takes it.
    await createFinishedJob(ns.kc, ns.name, 'a-older', 'Failed', new Date(Date.now() - 2 * H), ownerLabels(), undefined, annotations('older'));
    await createFinishedJob(ns.kc, ns.name, 'b-newer', 'Failed', AN_HOUR_AGO(), ownerLabels(), undefined, annotations('newer'));
    const s = await new Reaper(jobs, { namespace: ns.name, policy: keepOne, concurrency: 2, pageSize: 1, results: store() }).run({
      // Its record expires between the pages (as a short RESULT_RETENTION_SECONDS would let it).
      beforeNextPage: async (listed) => {
        if (listed === 1) await r.redis.del(keys.result('older'));
      },
    });
    expect(s.deleted).to.equal(1);
    expect(s.kept.newest).to.equal(1);
    expect(s.results!.recorded.failed, 'older twice (its own page, then again), newer once').to.equal(3);
    expect(await names()).to.deep.equal(['b-newer']);
    expect(await results().get('older')).to.deep.include({ state: 'failed', job: 'a-older', reason: 'BackoffLimitExceeded' });
  });

  it('`job-robot reap` with the bridge’s Redis variables records before it deletes, and says so (text and --json)', async function () {
    await finishedJobFor('item-1', 'Failed');
    await finishedJobFor('item-2', 'Complete');
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const env = { PATH: process.env['PATH'] ?? '', KUBECONFIG: adminKubeconfigPath(), NAMESPACE: ns.name, REDIS_URL: `redis://127.0.0.1:${r.server.port}/0`, QUEUE_KEY: keys.queue };
        execFile(process.execPath, [join(ROOT, 'function/cli.ts'), 'reap', ...args], { env: { ...env, REAPER_SUCCEEDED_MAX_AGE: '1s', REAPER_FAILED_MAX_AGE: '1s', REAPER_FAILED_KEEP: '0' } }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const dry = await cli(['--dry-run']);
    expect(dry.code, dry.stderr).to.equal(0);
    expect(dry.stdout).to.contain('results: dry run, recorded nothing');
    expect(await r.redis.exists(keys.results)).to.equal(0);

    const json = await cli(['--json']);
    expect(json.code, json.stderr).to.equal(0);
    const s = JSON.parse(json.stdout) as ReapSummary;
    expect(s).to.deep.include({ deleted: 2, results: { recorded: { succeeded: 1, failed: 1 }, withoutEvent: 0, otherSource: 0, unavailable: false } });
    expect((await streamIds()).sort()).to.deep.equal(['item-1', 'item-2']);

    await finishedJobFor('item-3', 'Complete');
    const text = await cli([]);
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout).to.contain('results: recorded 1 (1 succeeded, 0 failed)');
  });
});
