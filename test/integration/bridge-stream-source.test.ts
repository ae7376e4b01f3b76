/** Stream mode against a real redis-server: the consumer group, pending entries and hand-over. */
import { expect } from 'chai';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import type { Buried } from '../../function/queue/intake.ts';
import type { Claim } from '../../function/queue/source.ts';
import { StreamSource } from '../../function/queue/stream-source.ts';
import { pause, waitUntil } from '../helpers/bridge.ts';
import { useSourceRedis } from '../helpers/source-redis.ts';

const GROUP = 'job-robot';

describe('bridge stream mode: consumer group, pending entries, hand-over (real Redis)', function () {
  this.timeout(30_000);
  const r = useSourceRedis('stream');
  /** Limits these tests do not reach (the ones they are about are in bridge-intake.test.ts). */
  const intake = { maxItemBytes: 4 * 1024 * 1024, batchBytes: 64 * 1024 * 1024, eventSource: 'redis://test/0/queue' };

  function source(consumer: string, leaseMs = 30_000, deleteAcked = true): StreamSource {
    const client = r.connect('test');
    const blocking = r.connect('test-blocking', true);
    return new StreamSource({ client, blocking, keys: r.keys, consumer, group: GROUP, field: 'data', deleteAcked, leaseMs, blockMs: 500, intake });
  }
  /** A source that has registered (and recovered nothing it cares about). */
  async function started(...args: Parameters<typeof source>): Promise<StreamSource> {
    const s = source(...args);
    await s.start();
    return s;
  }


  const bodies = (claims: Claim[]) => claims.map((c) => c.item.toString());

  it('entries queued before the first start are delivered (the group starts at 0)', async function () {
    const ids = [await r.redis.xadd(r.keys.queue, '*', 'data', 'early-1'), await r.redis.xadd(r.keys.queue, '*', 'data', 'early-2')];
    const a = source('a');
    expect(await a.start()).to.deep.equal([]);
    const claims = await a.claim(10);
    expect(bodies(claims)).to.deep.equal(['early-1', 'early-2']);
    expect(claims.map((c) => c.id)).to.deep.equal(ids);
    expect(claims[0]!.time.getTime()).to.equal(Number(ids[0]!.split('-')[0]));
  });

  it('start creates the stream and group when neither exists, and a second start keeps the group', async function () {
    await source('a').start();
    await source('b').start();
    const groups = (await r.redis.xinfo('GROUPS', r.keys.queue)) as unknown[][];
    expect(groups).to.have.length(1);
  });

  it('crash before ack: the same consumer re-reads its pending entries on restart, with their attempts', async function () {
    await r.redis.xadd(r.keys.queue, '*', 'data', 'p1');
    await r.redis.xadd(r.keys.queue, '*', 'data', 'p2');
    const first = await started('a');
    const claims = await first.claim(10);
    await first.recordAttempts(claims[1]!, 4);
    const restarted = source('a');
    const own = await restarted.start();
    expect(own.map((c) => [c.id, c.item.toString(), c.attempts])).to.deep.equal([
      [claims[0]!.id, 'p1', 0],
      [claims[1]!.id, 'p2', 4],
    ]);
  });

  it('a dead consumer\'s entries are taken over once idle past the lease, keeping the entry id', async function () {
    const id = await r.redis.xadd(r.keys.queue, '*', 'data', 'orphan');
    const dead = await started('dead', 500);
    await dead.claim(10);
    const live = await started('live', 500);
    expect(await live.renewAndAdopt({ held: [], room: 10 })).to.deep.equal([]);
    // The lease is the idle time Redis measures for the pending entry.
    await waitUntil(async () => {
      const [entry] = (await r.redis.xpending(r.keys.queue, GROUP, '-', '+', 1)) as [string, string, number, number][];
      return entry !== undefined && entry[2] > 500;
    }, 5_000, 'the entry to sit idle past the lease');
    const adopted = await live.renewAndAdopt({ held: [], room: 10 });
    expect(adopted.map((c) => [c.id, c.item.toString()])).to.deep.equal([[id, 'orphan']]);
  });

  it('a live consumer touching its entries keeps them from being taken over', async function () {
    await r.redis.xadd(r.keys.queue, '*', 'data', 'busy');
    const busy = await started('busy', 500);
    const held = await busy.claim(10);
    const other = await started('other', 500);
    for (let i = 0; i < 8; i++) {
      await pause(150);
      await busy.renewAndAdopt({ held: held.map((c) => c.id), room: 0 });
      expect(await other.renewAndAdopt({ held: [], room: 10 })).to.deep.equal([]);
    }
  });

  it('ack removes the entry from the stream and the pending list; the group stays', async function () {
    await r.redis.xadd(r.keys.queue, '*', 'data', 'done');
    const a = await started('a');
    const [claim] = await a.claim(1);
    await a.ack(claim!);
    expect(await r.redis.xlen(r.keys.queue)).to.equal(0);
    expect(((await r.redis.xpending(r.keys.queue, GROUP)) as unknown[])[0]).to.equal(0);
    expect(await r.redis.xinfo('GROUPS', r.keys.queue)).to.have.length(1);
  });

  it('STREAM_DELETE_ACKED=false acknowledges but leaves the entry in the stream', async function () {
    await r.redis.xadd(r.keys.queue, '*', 'data', 'kept');
    const a = await started('a', 30_000, false);
    const [claim] = await a.claim(1);
    await a.ack(claim!);
    expect(await r.redis.xlen(r.keys.queue)).to.equal(1);
    expect(((await r.redis.xpending(r.keys.queue, GROUP)) as unknown[])[0]).to.equal(0);
  });

  it('dead-letter moves the entry with its id and note, once, even if asked twice', async function () {
    const item = Buffer.from([0x80, 0x81]);
    const id = await r.redis.xadd(r.keys.queue, '*', 'data', item);
    const a = await started('a');
    const [claim] = await a.claim(1);
    const note = { reason: 'sink answered 413', status: 413, attempts: 1, time: new Date(), source: 's' };
    await a.deadLetter(claim!, note);
    await a.deadLetter(claim!, note);
    const letters = await readDeadLetters(r.redis, r.keys.deadLetter);
    expect(letters).to.have.length(1);
    expect(letters[0]).to.deep.include({ id, status: 413, reason: 'sink answered 413' });
    expect(letters[0]!.item.equals(item)).to.equal(true);
    expect(await r.redis.xlen(r.keys.queue)).to.equal(0);
  });

  it('hand-back on shutdown makes pending entries adoptable at once, without waiting for the lease', async function () {
    const id = await r.redis.xadd(r.keys.queue, '*', 'data', 'handed');
    const leaving = await started('leaving', 60_000);
    await leaving.claim(1);
    await leaving.handBack();
    const next = await started('next', 60_000);
    expect((await next.renewAndAdopt({ held: [], room: 10 })).map((c) => c.id)).to.deep.equal([id]);
  });

  it('a consumer holding nothing is removed from the group on hand-back', async function () {
    await r.redis.xadd(r.keys.queue, '*', 'data', 'x');
    const a = await started('a');
    const [claim] = await a.claim(1);
    await a.ack(claim!);
    await a.handBack();
    expect(await r.redis.xinfo('CONSUMERS', r.keys.queue, GROUP)).to.deep.equal([]);
  });

  it('someone deleting the stream under the bridge: the group is recreated and later entries flow', async function () {
    const a = await started('a');
    await r.redis.del(r.keys.queue);
    expect(await a.claim(1)).to.deep.equal([]);
    await r.redis.xadd(r.keys.queue, '*', 'data', 'after');
    expect(bodies(await a.claim(1))).to.deep.equal(['after']);
  });

  it('an entry trimmed away while a dead consumer held it is dead-lettered as trimmed when adopted, not silently skipped', async function () {
    const id = (await r.redis.xadd(r.keys.queue, '*', 'data', 'trimmed'))!;
    const dead = await started('dead', 300);
    await dead.claim(1);
    await r.redis.xtrim(r.keys.queue, 'MAXLEN', 0);
    const reported: Buried[] = [];
    const client = r.connect('test');
    const live = new StreamSource({
      client, blocking: client, keys: r.keys, consumer: 'live', group: GROUP, field: 'data', deleteAcked: true, leaseMs: 300,
      intake: { ...intake, onBuried: (letters) => reported.push(...letters) },
    });
    await live.start();
    await waitUntil(async () => {
      expect(await live.renewAndAdopt({ held: [], room: 10 })).to.deep.equal([]);
      return reported.length > 0;
    }, 5_000, 'the adoption to dead-letter the trimmed entry');
    expect(reported).to.deep.equal([{ id, reason: 'trimmed', bytes: 0 }]);
    const [letter, ...more] = await readDeadLetters(r.redis, r.keys.deadLetter);
    expect(more).to.deep.equal([]);
    expect(letter).to.deep.include({ id, status: 0, attempts: 0, source: intake.eventSource });
    expect(letter!.reason).to.match(/^trimmed: /);
    expect(letter!.item.length).to.equal(0);
    expect(((await r.redis.xpending(r.keys.queue, GROUP)) as unknown[])[0], 'nothing pending').to.equal(0);
  });

  it('an entry deleted while pending is dead-lettered as trimmed on restart, with its attempts, and acknowledged', async function () {
    const id = (await r.redis.xadd(r.keys.queue, '*', 'data', 'vanishing'))!;
    const a = await started('a');
    const [claim] = await a.claim(1);
    await a.recordAttempts(claim!, 2);
    await r.redis.xdel(r.keys.queue, id);
    expect(await source('a').start()).to.deep.equal([]);
    const [letter, ...more] = await readDeadLetters(r.redis, r.keys.deadLetter);
    expect(more).to.deep.equal([]);
    expect(letter).to.deep.include({ id, status: 0, attempts: 2 });
    expect(letter!.reason).to.match(/^trimmed: /);
    expect(((await r.redis.xpending(r.keys.queue, GROUP)) as unknown[])[0], 'nothing pending').to.equal(0);
    expect(await r.redis.hlen(r.keys.attempts)).to.equal(0);
  });
});
