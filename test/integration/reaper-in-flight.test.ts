/**
 * The reaper keeps an expired Job while its queue item is still in flight, on the real control
 * plane and a real redis-server: the item is claimed by the bridge's own sources (list and stream
 * mode), the Job is the one the launcher builds for that event, finished through the status
 * subresource. Once the item is acknowledged, the next run deletes the Job. Jobs from other event
 * sources are not asked about; a Redis that does not answer keeps the queue's Jobs, not the rest.
 */
import { expect } from 'chai';
import { BatchV1Api, type V1Job } from '@kubernetes/client-node';
import { queueKeys, type QueueKeys } from '../../function/queue/keys.ts';
import { ListSource } from '../../function/queue/list-source.ts';
import { connect, type RedisClient, type RedisTarget } from '../../function/queue/connection.ts';
import { restOf } from '../../function/kube/client.ts';
import { sourceUrl } from '../../function/kube/event-source.ts';
import { restJobs, type JobsClient } from '../../function/kube/jobs-api.ts';
import type { KubeRest } from '../../function/kube/rest.ts';
import type { Claim, Source } from '../../function/queue/source.ts';
import { StreamSource } from '../../function/queue/stream-source.ts';
import { buildJob } from '../../function/launcher/job.ts';
import { loadReaperConfig } from '../../function/reaper/config.ts';
import { QueueInFlight, type InFlightSettings } from '../../function/reaper/in-flight.ts';
import type { Policy } from '../../function/reaper/policy.ts';
import { Reaper } from '../../function/reaper/reap.ts';
import type { ReapSummary } from '../../function/reaper/summary.ts';
import { finishedStatusPatch } from '../helpers/finished.ts';
import { plainJob } from '../helpers/jobs.ts';
import { useNamespace } from '../helpers/kube.ts';
import { uniquePrefix, usePrivateRedis } from '../helpers/redis.ts';
/** As Knative runs it: K_SERVICE names the Service, the default token audience. */
const load = (env: NodeJS.ProcessEnv) => loadReaperConfig({ K_SERVICE: 'job-robot-reaper', ...env });

const POLICY: Policy = { succeeded: { maxAgeMs: 1000, keep: 0 }, failed: { maxAgeMs: 1000, keep: 0 } };
const AN_HOUR_AGO = () => new Date(Date.now() - 3_600_000);

describe('reaper: an expired Job stays while its queue item is in flight (real Redis, real API server)', function () {
  this.timeout(60_000);
  const ns = useNamespace('reap-inflight');
  const r = usePrivateRedis();
  const clients: RedisClient[] = [];
  const checks: QueueInFlight[] = [];
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
    keys = queueKeys(`${uniquePrefix('inflight')}queue`);
  });
  afterEach(async function () {
    for (const c of clients.splice(0)) c.disconnect();
    await Promise.all(checks.splice(0).map((c) => c.close()));
  });

  const target = (port = r.server.port): RedisTarget => ({ kind: 'standalone', host: '127.0.0.1', port, db: 0, tls: false });
  const client = (blocking = false) => {
    const c = connect(target(), 'test', blocking);
    clients.push(c);
    return c;
  };
  const intake = { maxItemBytes: 64 * 1024, batchBytes: 1024 * 1024, eventSource: 'redis://test/0/queue' };
  const listSource = () => new ListSource({ client: client(), blocking: client(true), keys, consumer: 'bridge-a', pushEnd: 'left', leaseMs: 30_000, blockSeconds: 1, intake });
  const streamSource = () =>
    new StreamSource({ client: client(), blocking: client(true), keys, consumer: 'bridge-a', group: 'job-robot', field: 'data', deleteAcked: true, leaseMs: 30_000, blockMs: 500, intake });

  /** The check as the reaper process would build it from the bridge's variables. */
  function check(mode: 'list' | 'stream', extra: Record<string, string> = {}): QueueInFlight {
    const settings = load({ REDIS_URL: `redis://127.0.0.1:${r.server.port}/0`, QUEUE_KEY: keys.queue, MODE: mode, ...extra }).queue;
    expect(settings, 'a Redis address turns the check on').to.not.equal(undefined);
    const c = new QueueInFlight(settings as InFlightSettings);
    checks.push(c);
    return c;
  }

  /** The Job the launcher makes for event (source, id), created and finished an hour ago. */
  async function finishedJobFor(source: string, id: string): Promise<V1Job> {
    const job = buildJob(plainJob('template'), { prefix: 'inflight-', ttlSeconds: 86_400, serviceAccount: 'job-robot-job' }, { source, id, type: 't', env: [] });
    job.spec!.suspend = true;
    const created = await batch.createNamespacedJob({ namespace: ns.name, body: job });
    await batch.patchNamespacedJobStatus({ name: created.metadata!.name!, namespace: ns.name, body: finishedStatusPatch('Complete', AN_HOUR_AGO()) });
    return created;
  }

  const reap = (inFlight?: QueueInFlight, dryRun = false): Promise<ReapSummary> =>
    new Reaper(jobs, { namespace: ns.name, policy: POLICY, concurrency: 4, pageSize: 50, dryRun, ...(inFlight ? { inFlight } : {}) }).run();

  async function names(): Promise<string[]> {
    return (await batch.listNamespacedJob({ namespace: ns.name })).items.map((j) => j.metadata!.name!).sort();
  }

  async function cleanUp(): Promise<void> {
    await batch.deleteCollectionNamespacedJob({ namespace: ns.name, propagationPolicy: 'Background' });
  }
  afterEach(cleanUp);

  async function claimAll(source: Source, n: number): Promise<Claim[]> {
    await source.start();
    const claims: Claim[] = [];
    while (claims.length < n) claims.push(...(await source.claim(n - claims.length)));
    return claims;
  }

  for (const mode of ['list', 'stream'] as const) {
    it(`${mode} mode: keeps the Job of an unacknowledged item, deletes it once the item is acknowledged`, async function () {
      const source = sourceUrl(target(), keys.queue);
      if (mode === 'list') await r.redis.lpush(keys.queue, 'one', 'two');
      else for (const item of ['one', 'two']) await r.redis.xadd(keys.queue, '*', 'data', item);
      const bridge = mode === 'list' ? listSource() : streamSource();
      const [first, second] = await claimAll(bridge, 2);
      const jobs = [await finishedJobFor(source, first!.id), await finishedJobFor(source, second!.id)];
      // Only the first was acknowledged: the second's Job must outlive a bridge crash before its ack.
      await bridge.ack(first!);

      const inFlight = check(mode);
      const dry = await reap(inFlight, true);
      expect(dry.kept['in-flight'], 'a dry run reports the hold too').to.equal(1);
      expect(dry.wouldDelete!.map((w) => w.job)).to.deep.equal([jobs[0]!.metadata!.name]);

      const held = await reap(inFlight);
      expect(held.deleted).to.equal(1);
      expect(held.kept['in-flight']).to.equal(1);
      expect(held.expired, 'a held Job is not counted as expired-and-deleted').to.equal(1);
      expect(await names()).to.deep.equal([jobs[1]!.metadata!.name]);

      await bridge.ack(second!);
      const after = await reap(inFlight);
      expect(after.deleted).to.equal(1);
      expect(after.kept['in-flight']).to.equal(0);
      expect(await names()).to.deep.equal([]);
    });
  }

  it('leaves Jobs of other event sources (the same event id) to the policy alone', async function () {
    await r.redis.lpush(keys.queue, 'mine');
    const bridge = listSource();
    const [claim] = await claimAll(bridge, 1);
    const mine = await finishedJobFor(sourceUrl(target(), keys.queue), claim!.id);
    // Same event id from another source (a Broker Trigger, another queue): not this queue's item.
    const other = await finishedJobFor('/some/other/source', claim!.id);
    const s = await reap(check('list'));
    expect(s.kept['in-flight']).to.equal(1);
    expect(s.deleted).to.equal(1);
    expect(await names()).to.deep.equal([mine.metadata!.name]);
    expect(other.metadata!.name).to.not.equal(mine.metadata!.name);
  });

  it('EVENT_SOURCE pins the source it matches, as it does for the bridge', async function () {
    await r.redis.lpush(keys.queue, 'pinned');
    const [claim] = await claimAll(listSource(), 1);
    const job = await finishedJobFor('urn:job-robot:orders', claim!.id);
    const unpinned = await reap(check('list'));
    expect(unpinned.deleted, 'without EVENT_SOURCE the Job is not this queue’s').to.equal(1);
    await cleanUp();
    const again = await finishedJobFor('urn:job-robot:orders', claim!.id);
    expect(again.metadata!.name).to.equal(job.metadata!.name);
    const pinned = await reap(check('list', { EVENT_SOURCE: 'urn:job-robot:orders' }));
    expect(pinned.kept['in-flight']).to.equal(1);
    expect(pinned.deleted).to.equal(0);
  });

  it('a Redis that does not answer keeps the queue’s expired Jobs and still deletes the others', async function () {
    this.timeout(60_000);
    const source = sourceUrl(target(), keys.queue);
    const ids = ['0190a0a0-0000-7000-8000-000000000001', '0190a0a0-0000-7000-8000-000000000002', '0190a0a0-0000-7000-8000-000000000003'];
    for (const id of ids) await finishedJobFor(source, id);
    const unrelated = await finishedJobFor('/elsewhere', ids[0]!);
    // A port nothing listens on: every question fails; only the first waits for it.
    const dead = new QueueInFlight({ redis: target(1), queueKey: keys.queue, mode: 'list', group: 'job-robot', source }, { commandTimeout: 1_000, retryStrategy: () => 200 });
    checks.push(dead);
    const started = Date.now();
    const s = await reap(dead);
    expect(s.kept['in-flight-unknown']).to.equal(3);
    expect(s.deleted).to.equal(1);
    expect(Date.now() - started, 'the run does not wait once per Job').to.be.below(10_000);
    expect(await names()).to.not.include(unrelated.metadata!.name);
    expect((await names()).length).to.equal(3);
  });
});
