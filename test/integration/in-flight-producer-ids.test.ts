/**
 * The in-flight check (function/queue/in-flight.ts) with producer ids: the Job carries the
 * producer's id, while Redis holds the item under its claim id. The reaper must still see the item
 * as in flight until it is acknowledged, or a redelivery after the Job's deletion would make a
 * second Job. Real redis-server, the bridge's own list source.
 */
import { expect } from 'chai';
import { connect, type RedisClient } from '../../function/queue/connection.ts';
import { InFlight } from '../../function/queue/in-flight.ts';
import { ListSource } from '../../function/queue/list-source.ts';
import { useSourceRedis } from '../helpers/source-redis.ts';

describe('in-flight check with producer ids (real Redis)', function () {
  this.timeout(30_000);
  const r = useSourceRedis('inflight-ids');
  const clients: RedisClient[] = [];
  afterEach(function () {
    for (const c of clients.splice(0)) c.disconnect();
  });
  const client = (blocking = false) => {
    const c = connect({ kind: 'standalone', host: '127.0.0.1', port: r.server.port, db: 0, tls: false }, 'test', blocking);
    clients.push(c);
    return c;
  };
  const intake = { maxItemBytes: 64 * 1024, batchBytes: 1024 * 1024, eventSource: 'redis://test/0/queue' };

  it('a claimed item is in flight under its producer id until acknowledged, then not; other ids never are', async function () {
    const source = new ListSource({ client: client(), blocking: client(true), keys: r.keys, consumer: 'a', pushEnd: 'left', leaseMs: 30_000, blockSeconds: 1, intake, idField: 'requestId' });
    await source.start();
    await r.redis.lpush(r.keys.queue, JSON.stringify({ requestId: 'order-9' }));
    const [claim] = await source.claim(10);
    expect(claim?.eventId).to.equal('order-9');
    const check = new InFlight({ redis: { kind: 'standalone', host: '127.0.0.1', port: r.server.port, db: 0, tls: false }, queueKey: r.keys.queue, mode: 'list', group: 'job-robot' }, 'reaper');
    try {
      expect(await check.isInFlight('order-9')).to.equal(true);
      expect(await check.isInFlight(claim!.id), 'the claim id too').to.equal(true);
      expect(await check.isInFlight('order-10')).to.equal(false);
      await source.ack(claim!);
      await source.handBack([]);
      expect(await check.isInFlight('order-9')).to.equal(false);
    } finally {
      await check.close();
    }
  });
});
