import { expect } from 'chai';
import { Results } from '../../function/queue/results.ts';
import { Registry } from 'prom-client';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { knativeHeaders, startDeadLetterSink, type SinkUnderTest } from '../helpers/dead-letter-sink.ts';
import { connect, type RedisClient } from '../../function/queue/connection.ts';
import { deadLetterApp } from '../../function/dead-letter/app.ts';
import { admitAnyone } from '../../function/auth/gate.ts';
import { Health } from '../../function/http/health.ts';
import { listen } from '../../function/http/server.ts';
import { createLogger } from '../../function/log.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

describe('dead-letter sink: what the Broker gives up on lands on the Redis dead-letter stream', function () {
  let redis: RedisServer;
  let sink: SinkUnderTest;
  let client: RedisClient;
  let url: string;
  let key: string;

  before(async function () {
    redis = await startRedis();
    sink = await startDeadLetterSink(redis.url, {}, () => new Date('2026-11-28T12:00:00Z'));
    ({ client, url, key } = sink);
  });
  after(async function () {
    await sink?.close();
    await redis?.stop();
  });
  beforeEach(async function () {
    await client.del(key);
  });

  it("keeps the event id, the item's exact bytes, Knative's error code and the launcher's answer", async function () {
    const res = await fetch(url, { method: 'POST', headers: { ...knativeHeaders('ev-1'), 'content-type': 'application/json' }, body: '{"report":"ünïcode"}' });
    expect(res.status).to.equal(202);
    expect(await res.text()).to.equal('');
    expect(res.headers.get('x-dead-letters-written')).to.equal('1');
    const [dl] = await readDeadLetters(client, key);
    expect(dl!.id).to.equal('ev-1');
    expect(dl!.item.toString('utf8')).to.equal('{"report":"ünïcode"}');
    expect(dl!.status).to.equal(503);
    expect(dl!.source).to.equal('redis://redis:6379/0/job-robot:queue');
    expect(dl!.reason).to.equal('the Broker gave up delivering to http://job-robot-launcher.job-robot.svc.cluster.local: HTTP 503: {"error":"too-many-active-jobs"}');
    expect(dl!.time.toISOString()).to.equal('2026-11-28T12:00:00.000Z');
    expect(dl!.truncated).to.equal(undefined);
  });

  it("a queue item's dead letter ends its result (dead-lettered, with the reason); another event's does not", async function () {
    const results = new Results(client, sink.config.keys, sink.config.results);
    await fetch(url, { method: 'POST', headers: { ...knativeHeaders('item-1'), 'content-type': 'application/json' }, body: '{}' });
    const jobEvent = { ...knativeHeaders('a1b2c3'), 'ce-type': 'dev.knative.apiserver.resource.update', 'content-type': 'application/json' };
    await fetch(url, { method: 'POST', headers: jobEvent, body: '{}' });
    expect(await readDeadLetters(client, key)).to.have.length(2);
    expect(await results.get('item-1')).to.deep.include({ state: 'dead-lettered', reason: (await readDeadLetters(client, key))[0]!.reason });
    expect(await results.get('a1b2c3'), "the results function's Job event is no queue item").to.equal(undefined);
  });

  it('keeps the ce- and content-type headers as received, so a replay can rebuild the event', async function () {
    const headers = { ...knativeHeaders('ev-%C3%BC'), 'content-type': 'application/json', 'ce-jobrobot': 'job-robot' };
    await fetch(url, { method: 'POST', headers: { ...headers, authorization: 'Bearer not-kept' }, body: '{}' });
    const [dl] = await readDeadLetters(client, key);
    expect(dl!.id).to.equal('ev-ü');
    expect(JSON.parse(dl!.headers!)).to.deep.equal(headers);
  });

  it('text items stay text, byte for byte', async function () {
    const res = await fetch(url, { method: 'POST', headers: { ...knativeHeaders('ev-2'), 'content-type': 'text/plain' }, body: 'not json {' });
    expect(res.status).to.equal(202);
    const [dl] = await readDeadLetters(client, key);
    expect(dl!.item.toString('utf8')).to.equal('not json {');
  });

  it('a request that cannot be from a Broker (no ce- header, no CloudEvents content type) is a 415 and writes nothing', async function () {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).to.equal(415);
    expect(await client.exists(key)).to.equal(0);
  });

  it('Redis away: 503 with Retry-After, so the Broker retries instead of losing the event', async function () {
    const away = connect({ kind: 'standalone', host: '127.0.0.1', port: 1, db: 0, tls: false }, 'test-away', false, { lazyConnect: true, retryStrategy: () => null });
    away.on('error', () => undefined);
    const app = deadLetterApp({ senders: admitAnyone, client: away, keys: sink.config.keys, results: sink.config.results, itemType: sink.config.itemType, health: new Health(), registry: new Registry(), log: createLogger('silent'), maxRequestBytes: 1 << 21, maxItemBytes: 1 << 20 });
    const s = await listen(app, 0, '127.0.0.1');
    try {
      const res = await fetch(`http://127.0.0.1:${s.port}/`, { method: 'POST', headers: { ...knativeHeaders('ev-3'), 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).to.equal(503);
      expect(res.headers.get('retry-after')).to.equal('5');
    } finally {
      await s.close(1000);
      away.disconnect();
    }
  });
});
