/**
 * `job-robot status --wait` in-process, against a real redis-server and the real control plane:
 * the edges of reading the results stream that a child process cannot time. The Jobs API is the
 * real one, wrapped only to act at the moment the first check asks it.
 */
import { expect } from 'chai';
import { BatchV1Api, type BatchV1ApiListNamespacedJobRequest, type ConfigurationOptions, type V1JobList } from '@kubernetes/client-node';
import { connect, type RedisClient, type RedisTarget } from '../../function/queue/connection.ts';
import { queueKeys, type QueueKeys } from '../../function/queue/keys.ts';
import { Results } from '../../function/queue/results.ts';
import { StatusLookup, type JobsReader } from '../../function/status/lookup.ts';
import { useNamespace } from '../helpers/kube.ts';
import { uniquePrefix, usePrivateRedis } from '../helpers/redis.ts';

/** The real Jobs API; `onList` runs after the real answer, before the caller sees it. */
class Listing implements JobsReader {
  onList?: () => Promise<void>;
  lists = 0;
  private readonly batch: BatchV1Api;
  constructor(batch: BatchV1Api) {
    this.batch = batch;
  }
  async listNamespacedJob(request: BatchV1ApiListNamespacedJobRequest, options?: ConfigurationOptions): Promise<V1JobList> {
    this.lists++;
    const list = await this.batch.listNamespacedJob(request, options);
    await this.onList?.();
    return list;
  }
}

describe('job-robot status --wait: reading the results stream (real Redis, real API server)', function () {
  this.timeout(60_000);
  const ns = useNamespace('status-wait');
  const r = usePrivateRedis();
  const clients: RedisClient[] = [];
  let keys: QueueKeys;
  let api: Listing;

  beforeEach(function () {
    keys = queueKeys(`${uniquePrefix('status-wait')}queue`);
    api = new Listing(ns.kc.makeApiClient(BatchV1Api));
  });
  afterEach(function () {
    for (const c of clients.splice(0)) c.disconnect();
  });

  const client = (blocking = false) => {
    const target: RedisTarget = { kind: 'standalone', host: '127.0.0.1', port: r.server.port, db: 0, tls: false };
    const c = connect(target, blocking ? 'test-wait' : 'test', blocking);
    clients.push(c);
    return c;
  };
  const lookup = () => new StatusLookup({ redis: client(), keys, source: 'redis://test/0/queue', jobs: () => ({ api, namespace: ns.name }), describe: 'test redis' });
  const results = () => new Results(r.redis, keys);

  it('a result recorded between the first check and the first XREAD is not missed', async function () {
    // The first check finds no record and asks for the Job; right then, the result is recorded.
    api.onList = async () => {
      if (api.lists === 1) await results().record([{ id: 'item-1', state: 'succeeded', reason: 'CompletionsReached' }]);
    };
    const started = Date.now();
    const { status, timedOut } = await lookup().wait('item-1', 20, client(true));
    expect(timedOut).to.equal(false);
    expect(status).to.deep.include({ id: 'item-1', from: 'record', state: 'succeeded', reason: 'CompletionsReached' });
    expect(Date.now() - started, 'seen at once, not at the deadline').to.be.below(5_000);
  });

  it('entries of the stream from before the wait do not count, even for the same id', async function () {
    // An older final entry for the id whose record has since expired: not this wait's answer.
    await results().record([{ id: 'item-1', state: 'failed' }]);
    await r.redis.del(keys.result('item-1'));
    const { status, timedOut } = await lookup().wait('item-1', 1, client(true));
    expect(timedOut).to.equal(true);
    expect(status.state).to.equal('unknown');
  });

  it('reads past more entries than one XREAD returns to find the item’s', async function () {
    // Written during the first check, so every one of them comes after where the wait reads from.
    api.onList = async () => {
      const others = Array.from({ length: 1_200 }, (_, i) => ({ id: `other-${i}`, state: 'succeeded' as const }));
      if (api.lists === 1) await results().record([...others, { id: 'item-1', state: 'failed', reason: 'DeadlineExceeded' }]);
    };
    const started = Date.now();
    const { status, timedOut } = await lookup().wait('item-1', 20, client(true));
    expect(timedOut).to.equal(false);
    expect(status).to.deep.include({ state: 'failed', reason: 'DeadlineExceeded' });
    expect(Date.now() - started, 'found in the stream, not by the last check at the deadline').to.be.below(5_000);
  });
});
