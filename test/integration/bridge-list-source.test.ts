/**
 * List mode against a real redis-server, one crash step at a time: the states a kill -9 can leave
 * behind are built directly, then a fresh source (a restarted or another replica) must recover them.
 */
import { expect } from 'chai';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { ListSource } from '../../function/queue/list-source.ts';
import { defineScripts } from '../../function/queue/scripts.ts';
import type { Claim } from '../../function/queue/source.ts';
import { allKeys, waitUntil } from '../helpers/bridge.ts';
import { Redis } from 'ioredis';
import { startRedis } from '../helpers/redis.ts';
import { ReplyCut } from '../helpers/reply-cut.ts';
import { useSourceRedis } from '../helpers/source-redis.ts';

describe('bridge list mode: claims, leases and recovery (real Redis)', function () {
  this.timeout(30_000);
  const r = useSourceRedis('list');
  /** Limits these tests do not reach (the ones they are about are in bridge-intake.test.ts). */
  const intake = { maxItemBytes: 4 * 1024 * 1024, batchBytes: 64 * 1024 * 1024, eventSource: 'redis://test/0/queue' };

  function source(consumer: string, leaseMs = 30_000, pushEnd: 'left' | 'right' = 'left', port = r.server.port): ListSource {
    const client = r.connect('test', false, port);
    const blocking = r.connect('test-blocking', true, port);
    return new ListSource({ client, blocking, keys: r.keys, consumer, pushEnd, leaseMs, blockSeconds: 1, intake });
  }
  /** A source that has registered (and recovered nothing it cares about). */
  async function started(...args: Parameters<typeof source>): Promise<ListSource> {
    const s = source(...args);
    await s.start();
    return s;
  }


  /** Waits until Redis's own clock says the consumer's lease has run out. */
  async function leaseExpired(consumer: string): Promise<void> {
    await waitUntil(
      async () => {
        const [score, [sec, usec]] = await Promise.all([r.redis.zscore(r.keys.consumers, consumer), r.redis.time()]);
        return score === null || Number(score) <= Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
      },
      10_000,
      `the lease of ${consumer} to expire`,
    );
  }

  const bodies = (claims: Claim[]) => claims.map((c) => c.item.toString());

  it('claims in FIFO order and stamps each item with its own UUIDv7 id', async function () {
    await r.redis.lpush(r.keys.queue, 'a', 'b', 'c');
    const a = await started('a');
    const claims = await a.claim(10);
    expect(bodies(claims)).to.deep.equal(['a', 'b', 'c']);
    expect(new Set(claims.map((c) => c.id)).size).to.equal(3);
    for (const c of claims) expect(c.id).to.match(/^[0-9a-f-]{14}7/);
    expect(await r.redis.hlen(r.keys.items)).to.equal(3);
    expect(await r.redis.smembers(r.keys.claims('a'))).to.have.members(claims.map((c) => c.id));
    expect(await r.redis.llen(r.keys.queue)).to.equal(0);
  });

  it('LIST_END=right: producers RPUSH and the order is still FIFO', async function () {
    await r.redis.rpush(r.keys.queue, 'a', 'b', 'c');
    const a = await started('a', 30_000, 'right');
    expect(bodies(await a.claim(10))).to.deep.equal(['a', 'b', 'c']);
  });

  it('an empty queue blocks the claim until an item is pushed (push-driven, no polling)', async function () {
    const a = await started('a');
    const pending = a.claim(5);
    let settled = false;
    void pending.then(() => (settled = true));
    await waitUntil(async () => (await r.redis.call('CLIENT', 'LIST', 'TYPE', 'normal') as string).includes('cmd=blmove'), 5_000, 'BLMOVE to block');
    expect(settled).to.equal(false);
    await r.redis.lpush(r.keys.queue, 'pushed');
    const claims = await pending;
    expect(bodies(claims)).to.deep.equal(['pushed']);
    expect(await r.redis.llen(r.keys.processing('a'))).to.equal(0);
  });

  it('crash after BLMOVE, before the stamp: the same consumer stamps the item exactly once on restart', async function () {
    await r.redis.lpush(r.keys.queue, 'moved');
    // What BLMOVE did before the kill -9: the item sits, unstamped, in a's processing list.
    await r.redis.lmove(r.keys.queue, r.keys.processing('a'), 'RIGHT', 'LEFT');
    const restarted = source('a');
    expect(await restarted.start()).to.deep.equal([]);
    const claims = await restarted.claim(10);
    expect(bodies(claims)).to.deep.equal(['moved']);
    expect(await r.redis.llen(r.keys.processing('a'))).to.equal(0);
    // A second restart finds it stamped under the same id, not stamped again.
    const again = source('a');
    const own = await again.start();
    expect(own.map((c) => c.id)).to.deep.equal([claims[0]!.id]);
    expect(await again.claim(10).then(bodies).catch(() => [])).to.satisfy((b: string[]) => !b.includes('moved'));
    expect(await r.redis.hlen(r.keys.items)).to.equal(1);
  });

  it('crash after BLMOVE on a replica that never comes back: its item returns to the head of the queue when the lease expires, not before', async function () {
    await r.redis.lpush(r.keys.queue, 'first', 'second');
    await started('dead', 600);
    await r.redis.lmove(r.keys.queue, r.keys.processing('dead'), 'RIGHT', 'LEFT'); // "first" moved, then kill -9
    const live = await started('live');
    expect(await live.renewAndAdopt()).to.deep.equal([]);
    expect(await r.redis.lrange(r.keys.processing('dead'), 0, -1)).to.deep.equal(['first']);
    await leaseExpired('dead');
    expect(await live.renewAndAdopt()).to.deep.equal([]);
    expect(await r.redis.exists(r.keys.processing('dead'))).to.equal(0);
    expect(await r.redis.zscore(r.keys.consumers, 'dead')).to.equal(null);
    expect(bodies(await live.claim(1))).to.deep.equal(['first']);
  });

  it('a dead replica\'s stamped claims move to another replica with the same ids and their attempts', async function () {
    await r.redis.lpush(r.keys.queue, 'x', 'y');
    const dead = await started('dead', 600);
    const held = await dead.claim(2);
    await dead.recordAttempts(held[0]!, 3);
    const live = await started('live');
    expect(await live.renewAndAdopt()).to.deep.equal([]);
    await leaseExpired('dead');
    const adopted = await live.renewAndAdopt();
    expect(adopted.map((c) => [c.id, c.item.toString(), c.attempts])).to.have.deep.members([
      [held[0]!.id, 'x', 3],
      [held[1]!.id, 'y', 0],
    ]);
    expect(await r.redis.exists(r.keys.claims('dead'))).to.equal(0);
    expect(await r.redis.smembers(r.keys.claims('live'))).to.have.members(held.map((c) => c.id));
  });

  it('a replica that renews its lease is never adopted', async function () {
    await r.redis.lpush(r.keys.queue, 'kept');
    const busy = await started('busy', 600);
    await busy.claim(1);
    const other = await started('other');
    const deadline = Date.now() + 1_500;
    while (Date.now() < deadline) {
      await busy.renewAndAdopt();
      expect(await other.renewAndAdopt()).to.deep.equal([]);
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(await r.redis.scard(r.keys.claims('busy'))).to.equal(1);
  });

  it('ack by the old holder after its claim was adopted still removes the item, leaving nothing behind', async function () {
    await r.redis.lpush(r.keys.queue, 'slow');
    const old = await started('old', 600);
    const [claim] = await old.claim(1);
    await leaseExpired('old');
    const adopter = await started('adopter');
    const [adopted] = await adopter.renewAndAdopt();
    expect(adopted!.id).to.equal(claim!.id);
    await old.ack(claim!); // the partitioned holder's send succeeded after all
    await adopter.ack(adopted!);
    await adopter.recordAttempts(adopted!, 2); // a late bookkeeping write must not resurrect it
    await adopter.handBack([]);
    await old.handBack([]);
    expect(await allKeys(r.redis).then((k) => k.filter((key) => key.includes(r.keys.queue)))).to.deep.equal([]);
  });

  it('dead-letter keeps the item bytes, id and note; a second dead-letter or ack of the id does nothing', async function () {
    const item = Buffer.from([0xff, 0x00, 0xfe]);
    await r.redis.lpush(r.keys.queue, item);
    const a = await started('a');
    const [claim] = await a.claim(1);
    const note = { reason: 'sink answered 400: no', status: 400, attempts: 1, time: new Date('2024-01-01T00:00:00Z'), source: 'redis://x/0/q' };
    await a.deadLetter(claim!, note);
    await a.deadLetter(claim!, note);
    await a.ack(claim!);
    const letters = await readDeadLetters(r.redis, r.keys.deadLetter);
    expect(letters).to.have.length(1);
    expect(letters[0]).to.deep.include({ id: claim!.id, reason: note.reason, status: 400, attempts: 1, source: 'redis://x/0/q' });
    expect(letters[0]!.item.equals(item)).to.equal(true);
    expect(await r.redis.hlen(r.keys.items)).to.equal(0);
  });

  it('hand-back on shutdown: unstamped items return to the head of the queue, claims are adoptable at once with their ids', async function () {
    await r.redis.lpush(r.keys.queue, 'a', 'b', 'c');
    const leaving = await started('leaving', 60_000);
    const [held] = await leaving.claim(1); // "a" stamped
    await r.redis.lmove(r.keys.queue, r.keys.processing('leaving'), 'RIGHT', 'LEFT'); // "b" moved, not stamped
    await leaving.handBack([]);
    expect(await r.redis.lrange(r.keys.queue, 0, -1)).to.deep.equal(['c', 'b']);
    const next = await started('next');
    const adopted = await next.renewAndAdopt(); // no waiting for the 60 s lease
    expect(adopted.map((c) => c.id)).to.deep.equal([held.id]);
    expect(bodies(await next.claim(5))).to.deep.equal(['b', 'c']);
  });

  it('hand-back of claims stamped but never sent: back at the head of the queue in order, without their ids', async function () {
    await r.redis.lpush(r.keys.queue, 'a', 'b', 'c', 'd');
    const leaving = await started('leaving', 60_000);
    const claims = await leaving.claim(3); // a, b, c: claimed ahead, none sent
    expect(claims.every((c) => c.fresh)).to.equal(true);
    await leaving.handBack(claims);
    expect(await r.redis.hlen(r.keys.items)).to.equal(0);
    expect(await r.redis.exists(r.keys.consumers)).to.equal(0);
    const next = await started('next');
    const again = await next.claim(10);
    expect(bodies(again)).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(again.map((c) => c.id)).to.not.include.members(claims.map((c) => c.id));
  });

  it('hand-back never strips the id of a recovered claim, even if the bridge calls it unsent', async function () {
    await r.redis.lpush(r.keys.queue, 'seen');
    const first = await started('same', 60_000);
    const [claim] = await first.claim(1);
    const restarted = source('same', 60_000);
    const own = await restarted.start();
    expect(own.map((c) => [c.id, c.fresh])).to.deep.equal([[claim!.id, undefined]]);
    await restarted.handBack(own);
    expect(await r.redis.hkeys(r.keys.items)).to.deep.equal([claim!.id]);
    expect(await r.redis.llen(r.keys.queue)).to.equal(0);
  });

  it('a consumer that holds nothing leaves the lease table on hand-back', async function () {
    const a = await started('a');
    expect(await r.redis.zscore(r.keys.consumers, 'a')).to.not.equal(null);
    await a.handBack([]);
    expect(await r.redis.exists(r.keys.consumers)).to.equal(0);
  });

  it('invalid UTF-8, empty and 1 MB items come back byte for byte', async function () {
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    const items = [Buffer.from([0xc3, 0x28]), Buffer.alloc(0), big, Buffer.from('\u0000\r\n')];
    for (const item of items) await r.redis.lpush(r.keys.queue, item);
    const a = await started('a');
    const claims = await a.claim(10);
    expect(claims).to.have.length(items.length);
    claims.forEach((c, i) => expect(c.item.equals(items[i]!), `item ${i}`).to.equal(true));
    const again = await source('a').start();
    again.forEach((c) => expect(items.some((i) => i.equals(c.item))).to.equal(true));
  });

  it('two replicas racing over 2,000 items never stamp one item twice', async function () {
    const total = 2_000;
    const a = source('a');
    const b = source('b');
    await Promise.all([a.start(), b.start()]);
    const seen: Claim[] = [];
    const drain = async (s: ListSource) => {
      while (seen.length < total) {
        const claims = await s.claim(7);
        seen.push(...claims);
        await Promise.all(claims.map((c) => s.ack(c)));
      }
    };
    const racing = Promise.all([drain(a), drain(b)]);
    for (let i = 0; i < total; i += 100) {
      await r.redis.lpush(r.keys.queue, ...Array.from({ length: 100 }, (_, j) => `item-${i + j}`));
    }
    await racing;
    expect(seen).to.have.length(total);
    expect(new Set(seen.map((c) => c.id)).size).to.equal(total);
    expect(new Set(bodies(seen)).size).to.equal(total);
    a.interrupt();
    b.interrupt();
  });

  it('a claim call repeated with its prefix (its reply was lost) returns the batch it stamped and stamps nothing new', async function () {
    await r.redis.lpush(r.keys.queue, 'a', 'b', 'c');
    const client = r.connect('test');
    const scripts = defineScripts(client);
    const prefix = '0190a0a0-0000-7000-8000-00000000';
    const call = async () => {
      const [items] = (await scripts.claim(
        r.keys.queue, r.keys.processing('a'), r.keys.items, r.keys.claims('a'), r.keys.attempts, r.keys.deadLetter, r.keys.lastClaim,
        'RPOP', 0, prefix, 2, 1024, 1024 * 1024, 'a', new Date().toISOString(), 'redis://test',
      )) as [Buffer[]];
      return items.map(String);
    };
    expect(await call()).to.deep.equal(['a', 'b']);
    expect(await call(), 'the repeat').to.deep.equal(['a', 'b']);
    expect(await r.redis.hgetall(r.keys.items)).to.deep.equal({ [`${prefix}0000`]: 'a', [`${prefix}0001`]: 'b' });
    expect(await r.redis.lrange(r.keys.queue, 0, -1)).to.deep.equal(['c']);
    // Adopted by another consumer meanwhile: the batch is no longer this consumer's to send.
    await r.redis.smove(r.keys.claims('a'), r.keys.claims('b'), `${prefix}0000`);
    expect(await call()).to.deep.equal([]);
  });

  it('a claim whose reply never arrives (connection cut after Redis ran it) resolves with that batch: nothing lost, no id reused', async function () {
    const cut = new ReplyCut(r.server.port);
    try {
      const a = await started('a', 30_000, 'left', await cut.port);
      // The first claim loads the script, so the reply cut below is the answer of a claim that ran.
      await r.redis.lpush(r.keys.queue, 'warm-up');
      const [warm] = await a.claim(1);
      await a.ack(warm!);
      await r.redis.lpush(r.keys.queue, 'a', 'b', 'c', 'd');
      cut.arm();
      const first = await a.claim(2);
      expect(cut.cuts, 'a reply was dropped').to.equal(1);
      expect(bodies(first)).to.deep.equal(['a', 'b']);
      expect(await r.redis.hmget(r.keys.items, ...first.map((c) => c.id))).to.deep.equal(['a', 'b']);
      const rest = await a.claim(10);
      expect(bodies(rest)).to.deep.equal(['c', 'd']);
      const ids = [...first, ...rest].map((c) => c.id);
      expect(new Set(ids).size).to.equal(4);
      expect(await r.redis.hlen(r.keys.items)).to.equal(4);
      expect(await r.redis.llen(r.keys.queue)).to.equal(0);
      a.interrupt();
    } finally {
      await cut.close();
    }
  });

  it('an adoption whose reply never arrives resolves with the adopted claims: none left unsent under a live consumer', async function () {
    await r.redis.lpush(r.keys.queue, 'x', 'y');
    const dead = await started('dead', 500);
    const held = await dead.claim(10);
    expect(bodies(held)).to.deep.equal(['x', 'y']);
    await leaseExpired('dead');
    const cut = new ReplyCut(r.server.port);
    try {
      const a = await started('a', 30_000, 'left', await cut.port);
      // renewAndAdopt renews a's lease (that reply passes), then adopts: that reply is dropped.
      cut.arm(1);
      const adopted = await a.renewAndAdopt();
      expect(cut.cuts, 'a reply was dropped').to.equal(1);
      expect(adopted.map((c) => c.id).sort()).to.deep.equal(held.map((c) => c.id).sort());
      expect(bodies(adopted).sort()).to.deep.equal(['x', 'y']);
      expect(await r.redis.smembers(r.keys.claims('a'))).to.have.members(held.map((c) => c.id));
      expect(await r.redis.exists(r.keys.adopted), 'the note is gone once the reply arrived').to.equal(0);
      a.interrupt();
    } finally {
      await cut.close();
    }
  });

  /** "dead" claims one item and lapses; "a" adopts it through the script alone, as if killed before removing its note. */
  async function adoptedByScriptOnly(): Promise<Claim> {
    await r.redis.lpush(r.keys.queue, 'x');
    const dead = await started('dead', 500);
    const [held] = await dead.claim(10);
    await leaseExpired('dead');
    await started('a', 500);
    const scripts = defineScripts(r.connect('test'));
    const [given] = (await scripts.adopt(
      r.keys.consumers, r.keys.processing('dead'), r.keys.claims('dead'), r.keys.claims('a'), r.keys.queue, r.keys.items, r.keys.attempts, r.keys.adopted,
      r.keys.deadLetter, r.keys.lastClaim, 'dead', 'RIGHT', 'a', 1024, new Date().toISOString(), 'redis://test',
    )) as [Buffer[]];
    expect(given.map(String)[0]).to.equal(held.id);
    expect(await r.redis.hget(r.keys.adopted, 'a')).to.equal(`dead ${held.id}`);
    return held;
  }

  it('an adopter that died before removing its note: the note goes when it is adopted in turn, with everything it held', async function () {
    const held = await adoptedByScriptOnly();
    await leaseExpired('a');
    const b = await started('b');
    const adopted = await b.renewAndAdopt();
    expect(adopted.map((c) => c.id)).to.deep.equal([held.id]);
    expect(await r.redis.exists(r.keys.adopted), 'no note left').to.equal(0);
    expect(await r.redis.smembers(r.keys.claims('b'))).to.deep.equal([held.id]);
    b.interrupt();
  });

  it('an adopter that died before removing its note and restarts under its name: the note goes at its start, nothing is left after it stops', async function () {
    const held = await adoptedByScriptOnly();
    const again = source('a');
    const recovered = await again.start();
    expect(recovered.map((c) => c.id)).to.deep.equal([held.id]);
    expect(await r.redis.exists(r.keys.adopted), 'the note went at the restart').to.equal(0);
    await again.ack(recovered[0]!);
    await again.handBack([]);
    expect(await allKeys(r.redis).then((k) => k.filter((key) => key.includes(r.keys.queue)))).to.deep.equal([]);
  });

  it('CLAIM_WAIT_REPLICAS: a batch goes out once a replica holds its stamps; with the replica stalled, after the timeout, counted', async function () {
    // Full sync at once, not after the default 5 s wait for more replicas.
    await r.redis.config('SET', 'repl-diskless-sync-delay', '0');
    const replica = await startRedis(['--replicaof', '127.0.0.1', String(r.server.port)]);
    const onReplica = new Redis(replica.url);
    try {
      await waitUntil(async () => /slave0:.*state=online/.test(await r.redis.info('replication')), 10_000, 'the replica to sync');
      const shorts: [number, number][] = [];
      const waiting = (consumer: string, timeoutMs: number) => {
        const client = r.connect('test');
        const blocking = r.connect('test-blocking', true);
        const replicas = { count: 1, timeoutMs, onShort: (items: number, acked: number) => void shorts.push([items, acked]) };
        return new ListSource({ client, blocking, keys: r.keys, consumer, pushEnd: 'left', leaseMs: 30_000, blockSeconds: 1, replicas, intake });
      };
      // Generous while the replica is up (a loaded machine may take a while), short once it is stalled.
      const a = waiting('a', 10_000);
      await a.start();
      await r.redis.lpush(r.keys.queue, 'a', 'b');
      const first = await a.claim(10);
      expect(bodies(first)).to.deep.equal(['a', 'b']);
      expect(shorts, 'the replica acknowledged in time').to.deep.equal([]);
      expect(await onReplica.hmget(r.keys.items, ...first.map((c) => c.id)), 'the replica holds the stamps once the claim returns').to.deep.equal(['a', 'b']);

      replica.child!.kill('SIGSTOP');
      try {
        const b = waiting('b', 500);
        await b.start();
        await r.redis.lpush(r.keys.queue, 'c');
        const started = Date.now();
        const second = await b.claim(10);
        b.interrupt();
        expect(bodies(second)).to.deep.equal(['c']);
        expect(Date.now() - started).to.be.at.least(450);
        expect(shorts).to.deep.equal([[1, 0]]);
      } finally {
        replica.child!.kill('SIGCONT');
      }
      a.interrupt();
    } finally {
      onReplica.disconnect();
      await replica.stop();
    }
  });
});
