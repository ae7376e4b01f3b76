import { expect } from 'chai';
import { Batcher } from '../../function/queue/batch.ts';
import { loadRedisSettings } from '../../function/config/redis.ts';
import { ConfigError } from '../../function/config/base.ts';
import { describeTarget } from '../../function/queue/connection.ts';

describe('queue batcher: many acks, one round trip', function () {
  it('calls made together run as one batch, and each caller learns it is done', async function () {
    const runs: number[][] = [];
    const b = new Batcher<number>(async (items) => void runs.push(items));
    await Promise.all([b.add(1), b.add(2), b.add(3)]);
    expect(runs).to.deep.equal([[1, 2, 3]]);
  });

  it('a full batch runs at once without waiting for the timer', async function () {
    const runs: number[][] = [];
    const b = new Batcher<number>(async (items) => void runs.push(items), 2, 60_000);
    await Promise.all([b.add(1), b.add(2)]);
    expect(runs).to.deep.equal([[1, 2]]);
  });

  it('a failed run rejects every caller of that batch, and only those', async function () {
    let fail = true;
    const b = new Batcher<number>(async () => {
      if (fail) throw new Error('redis down');
    });
    const first = await Promise.allSettled([b.add(1), b.add(2)]);
    expect(first.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    fail = false;
    await b.add(3);
  });

  it('take() hands the waiting items to another call, which settles their callers', async function () {
    const runs: number[][] = [];
    const b = new Batcher<number>(async (items) => void runs.push(items), 256, 60_000);
    const waiting = [b.add(1), b.add(2)];
    const taken = b.take();
    expect(taken.items).to.deep.equal([1, 2]);
    taken.settle();
    await Promise.all(waiting);
    const failed = b.add(3);
    b.take().settle(new Error('claim failed'));
    await failed.then(() => expect.fail('resolved'), (err: Error) => expect(err.message).to.equal('claim failed'));
    expect(runs).to.deep.equal([]);
  });
});

describe('shared Redis settings (bridge, doctor, dead-letter sink)', function () {
  it('need no K_SINK and default to the local server and the default queue', function () {
    const s = loadRedisSettings({});
    expect(s.queueKey).to.equal('job-robot:queue');
    expect(describeTarget(s.redis)).to.equal('redis://127.0.0.1:6379/0');
  });

  it('describe a TLS target without its password', function () {
    const s = loadRedisSettings({ REDIS_URL: 'rediss://user:secret@redis.example:6380/2' });
    expect(describeTarget(s.redis)).to.equal('rediss://redis.example:6380/2');
  });

  it('name the variable when URL and separate variables are mixed', function () {
    expect(() => loadRedisSettings({ REDIS_URL: 'redis://a', REDIS_PORT: '1' })).to.throw(ConfigError, /REDIS_PORT/);
  });
});
