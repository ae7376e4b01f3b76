import { expect } from 'chai';
import { Registry } from 'prom-client';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { connect, type RedisClient } from '../../function/queue/connection.ts';
import { deadLetterApp } from '../../function/dead-letter/app.ts';
import { loadDeadLetterConfig } from '../../function/dead-letter/config.ts';
import { Health } from '../../function/http/health.ts';
import { listen, type RunningServer } from '../../function/http/server.ts';
import { createLogger } from '../../function/log.ts';
import { startRedis, uniquePrefix, type RedisServer } from '../helpers/redis.ts';

describe('dead-letter sink: what the Broker gives up on lands on the Redis dead-letter stream', function () {
  let redis: RedisServer;
  let client: RedisClient;
  let server: RunningServer;
  let url: string;
  let key: string;
  const health = new Health();

  before(async function () {
    redis = await startRedis();
    const config = loadDeadLetterConfig({ REDIS_URL: `${redis.url}/0`, QUEUE_KEY: `${uniquePrefix('dls')}queue` });
    key = config.deadLetterKey;
    client = connect(config.redis, 'test-dead-letter');
    await client.ping();
    server = await listen(
      deadLetterApp({ client, key, health, registry: new Registry(), log: createLogger('silent'), maxRequestBytes: 1 << 20, now: () => new Date('2026-11-28T12:00:00Z') }),
      0,
      '127.0.0.1',
    );
    url = `http://127.0.0.1:${server.port}/`;
  });
  after(async function () {
    await server?.close(1000);
    client?.disconnect();
    await redis?.stop();
  });

  const knativeHeaders = (id: string, extra: Record<string, string> = {}) => ({
    'ce-specversion': '1.0',
    'ce-id': id,
    'ce-source': 'redis://redis:6379/0/job-robot:queue',
    'ce-type': 'dev.job-robot.queue.item',
    'ce-knativeerrorcode': '503',
    'ce-knativeerrordest': 'http://job-robot-launcher.job-robot.svc.cluster.local',
    'ce-knativeerrordata': Buffer.from('{"error":"too-many-active-jobs"}').toString('base64'),
    ...extra,
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
    expect(dl!.reason).to.contain('job-robot-launcher').and.contain('HTTP 503').and.contain('too-many-active-jobs');
    expect(dl!.time.toISOString()).to.equal('2026-11-28T12:00:00.000Z');
  });

  it('text items stay text, byte for byte', async function () {
    await client.del(key);
    const res = await fetch(url, { method: 'POST', headers: { ...knativeHeaders('ev-2'), 'content-type': 'text/plain' }, body: 'not json {' });
    expect(res.status).to.equal(202);
    const [dl] = await readDeadLetters(client, key);
    expect(dl!.item.toString('utf8')).to.equal('not json {');
  });

  it('an invalid CloudEvent is a 400 and writes nothing', async function () {
    await client.del(key);
    const { 'ce-id': _omit, ...noId } = knativeHeaders('x');
    const res = await fetch(url, { method: 'POST', headers: { ...noId, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).to.equal(400);
    expect(await client.exists(key)).to.equal(0);
  });

  it('Redis away: 503 with Retry-After, so the Broker retries instead of losing the event', async function () {
    const away = connect({ kind: 'standalone', host: '127.0.0.1', port: 1, db: 0, tls: false }, 'test-away', false, { lazyConnect: true, retryStrategy: () => null });
    away.on('error', () => undefined);
    const s = await listen(deadLetterApp({ client: away, key, health, registry: new Registry(), log: createLogger('silent'), maxRequestBytes: 1 << 20 }), 0, '127.0.0.1');
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
