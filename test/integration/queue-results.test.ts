/**
 * The results room (function/queue/results.ts): records only move forward, the first final state
 * wins and is announced once on the results stream, records expire, and the scripts stay on the
 * queue's slot on a Redis Cluster. Real redis-server.
 */
import { expect } from 'chai';
import { connect, type RedisClient } from '../../function/queue/connection.ts';
import { appendDeadLetters } from '../../function/queue/dead-letter.ts';
import { queueKeys } from '../../function/queue/keys.ts';
import { Results, type ResultUpdate } from '../../function/queue/results.ts';
import { startRedisCluster, type RedisClusterServers } from '../helpers/redis-cluster.ts';
import { useSourceRedis } from '../helpers/source-redis.ts';

const SETTINGS = { retentionSeconds: 3600, streamMaxLen: 1000 };
const created = (id: string): ResultUpdate => ({ id, state: 'created', job: `job-${id}`, source: 'redis://q', created: new Date('2026-12-01T10:00:00Z') });
const succeeded = (id: string): ResultUpdate => ({ ...created(id), state: 'succeeded', finished: new Date('2026-12-01T10:01:00Z'), reason: 'Completed' });
const failed = (id: string): ResultUpdate => ({ ...created(id), state: 'failed', finished: new Date('2026-12-01T10:02:00Z'), reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' });

describe('results: one record per event id, forward only, announced once (real Redis)', function () {
  this.timeout(60_000);
  const r = useSourceRedis('results');
  let results: Results;
  const stream = async () => (await r.redis.xrange(r.keys.results, '-', '+')).map(([, f]) => Object.fromEntries(pairs(f)));

  beforeEach(function () {
    results = new Results(r.connect('results'), r.keys, SETTINGS);
  });

  it('created then succeeded: both changes apply, the record holds the Job, times and reason, one stream entry', async function () {
    expect(await results.record([created('a')])).to.deep.equal([true]);
    expect(await results.get('a')).to.deep.equal({ id: 'a', state: 'created', source: 'redis://q', job: 'job-a', created: '2026-12-01T10:00:00.000Z' });
    expect(await stream(), 'created is not final: nothing announced').to.deep.equal([]);
    expect(await results.record([succeeded('a')])).to.deep.equal([true]);
    expect(await results.get('a')).to.deep.include({ state: 'succeeded', finished: '2026-12-01T10:01:00.000Z', reason: 'Completed' });
    expect(await stream()).to.deep.equal([
      { id: 'a', state: 'succeeded', source: 'redis://q', job: 'job-a', created: '2026-12-01T10:00:00.000Z', finished: '2026-12-01T10:01:00.000Z', reason: 'Completed' },
    ]);
  });

  it('out of order and redelivered: a final state arriving first stays; created after it, the same final again, or another final change nothing', async function () {
    expect(await results.record([failed('b'), created('b'), failed('b'), succeeded('b')])).to.deep.equal([true, false, false, false]);
    expect(await results.get('b')).to.deep.include({ state: 'failed', reason: 'BackoffLimitExceeded' });
    expect(await stream()).to.have.length(1);
  });

  it('each record expires after the retention, renewed by each change', async function () {
    await results.record([created('c')]);
    const ttl = await r.redis.ttl(r.keys.result('c'));
    expect(ttl).to.be.within(SETTINGS.retentionSeconds - 5, SETTINGS.retentionSeconds);
    await r.redis.expire(r.keys.result('c'), 10);
    await results.record([succeeded('c')]);
    expect(await r.redis.ttl(r.keys.result('c'))).to.be.greaterThan(10);
  });

  it('a long reason and message are cut to their bounds, not refused', async function () {
    await results.record([{ ...failed('d'), reason: 'R'.repeat(10_000), message: 'M'.repeat(100_000) }]);
    const record = await results.get('d');
    expect(record?.reason).to.have.length(256);
    expect(record?.message).to.have.length(1024);
  });

  it('the results stream stays near RESULTS_MAX_LEN entries', async function () {
    const small = new Results(r.connect('small'), r.keys, { retentionSeconds: 60, streamMaxLen: 100 });
    await small.record(Array.from({ length: 1000 }, (_, i) => succeeded(`s${i}`)));
    const length = await r.redis.xlen(r.keys.results);
    expect(length).to.be.at.least(100).and.below(400);
  });

  it("the dead-letter sink's record ends the item's result in the same step", async function () {
    const client = r.connect('sink');
    const refused = await appendDeadLetters(client, r.keys, SETTINGS, [
      { id: 'e', item: Buffer.from('{}'), reason: 'launcher answered 400', status: 400, attempts: 13, time: new Date('2026-12-01T11:00:00Z'), source: 'redis://q' },
    ]);
    expect(refused).to.equal(undefined);
    expect(await results.get('e')).to.deep.equal({ id: 'e', state: 'dead-lettered', source: 'redis://q', finished: '2026-12-01T11:00:00.000Z', reason: 'launcher answered 400' });
    expect(await r.redis.xlen(r.keys.deadLetter)).to.equal(1);
    expect((await stream()).map((e) => e.state)).to.deep.equal(['dead-lettered']);
  });

  it('getMany answers in order, undefined where there is no record', async function () {
    await results.record([created('f1'), succeeded('f3')]);
    expect((await results.getMany(['f1', 'f2', 'f3'])).map((x) => x?.state)).to.deep.equal(['created', undefined, 'succeeded']);
  });

  describe('on a Redis Cluster', function () {
    this.timeout(120_000);
    let cluster: RedisClusterServers | undefined;
    const clients: RedisClient[] = [];
    before(async function () {
      cluster = await startRedisCluster();
    });
    after(async function () {
      for (const c of clients) c.disconnect();
      await cluster?.stop();
    });

    it('records, the stream and the sink write through the queue slot whatever the ids hash to', async function () {
      const nodes = cluster!.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
      const client = connect({ kind: 'cluster', nodes, tls: false }, 'results-cluster', false);
      clients.push(client);
      const keys = queueKeys('orders:{cluster-results}:queue');
      const onCluster = new Results(client, keys, SETTINGS);
      const ids = Array.from({ length: 50 }, (_, i) => `id-${i}-{other}`);
      expect(await onCluster.record(ids.map(succeeded))).to.deep.equal(ids.map(() => true));
      expect(await appendDeadLetters(client, keys, SETTINGS, [
        { id: 'dl', item: Buffer.from('x'), reason: 'r', status: 0, attempts: 1, time: new Date(), source: 's' },
      ])).to.equal(undefined);
      expect((await onCluster.getMany([...ids, 'dl'])).every((x) => x !== undefined)).to.equal(true);
      expect(await client.xlen(keys.results)).to.equal(51);
    });
  });
});

function* pairs(fields: string[]): Generator<[string, string]> {
  for (let i = 0; i + 1 < fields.length; i += 2) yield [fields[i]!, fields[i + 1]!];
}
