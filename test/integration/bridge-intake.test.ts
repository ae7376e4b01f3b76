/**
 * What a claim may hand the bridge (MAX_ITEM_BYTES and the batch budget), against a real
 * redis-server: items are measured by the scripts, and what is too long is dead-lettered by Redis
 * itself, in list and stream mode, on every path a claim can take (new, recovered, adopted, and the
 * blocking read that waits for the next item).
 */
import { expect } from 'chai';
import { readDeadLetters, type DeadLetter } from '../helpers/dead-letters.ts';
import type { QueueKeys } from '../../function/queue/keys.ts';
import { ListSource } from '../../function/queue/list-source.ts';
import { StreamSource } from '../../function/queue/stream-source.ts';
import { connect, type RedisClient } from '../../function/queue/connection.ts';
import { DEFAULT_RESULT_SETTINGS, Results, resultArgs } from '../../function/queue/results.ts';
import { defineScripts } from '../../function/queue/scripts.ts';
import { uuidv7Time } from '../../function/queue/ids.ts';
import type { Buried, Intake } from '../../function/queue/intake.ts';
import type { Claim } from '../../function/queue/source.ts';
import { waitUntil } from '../helpers/bridge.ts';
import { startRedisCluster, type RedisClusterServers } from '../helpers/redis-cluster.ts';
import { useSourceRedis } from '../helpers/source-redis.ts';

const LIMIT = 1024;
const SOURCE = 'redis://test/0/queue';
const GROUP = 'job-robot';

describe('bridge intake: MAX_ITEM_BYTES and the batch budget, measured in Redis (real Redis)', function () {
  this.timeout(30_000);
  const r = useSourceRedis('intake');
  let keys: QueueKeys;
  const clusterClients: RedisClient[] = [];
  let buried: Buried[];
  let cuts: number[];
  beforeEach(function () {
    keys = r.keys;
    buried = [];
    cuts = [];
  });
  afterEach(function () {
    for (const c of clusterClients.splice(0)) c.disconnect();
  });

  const intake = (maxItemBytes = LIMIT, batchBytes = 16 * LIMIT): Intake => ({
    maxItemBytes,
    batchBytes,
    eventSource: SOURCE,
    onBuried: (letters) => buried.push(...letters),
    onReplyCut: (bytes) => cuts.push(bytes),
  });
  const connections = () => ({ client: r.connect('test'), blocking: r.connect('test-blocking', true) });
  const list = (consumer: string, limits = intake(), leaseMs = 30_000) =>
    new ListSource({ ...connections(), keys, consumer, pushEnd: 'left', leaseMs, blockSeconds: 1, intake: limits });
  const stream = (consumer: string, limits = intake(), leaseMs = 30_000) =>
    new StreamSource({ ...connections(), keys, consumer, group: GROUP, field: 'data', deleteAcked: true, leaseMs, blockMs: 500, intake: limits });

  const bytes = (n: number, fill = 'x') => Buffer.alloc(n, fill);
  const sizes = (claims: Claim[]) => claims.map((c) => c.item.length);
  const letters = () => readDeadLetters(r.redis, keys.deadLetter);

  function expectTooLarge(letter: DeadLetter | undefined, id: string, item: Buffer, attempts = 0): void {
    expect(letter, 'a dead letter').to.not.equal(undefined);
    expect(letter).to.deep.include({ id, status: 0, attempts, source: SOURCE });
    expect(letter!.reason).to.equal(`too-large: ${item.length} bytes, over the limit of ${LIMIT} (MAX_ITEM_BYTES)`);
    expect(letter!.item.equals(item), 'the item, whole').to.equal(true);
    expect(Date.now() - letter!.time.getTime()).to.be.within(0, 10_000);
  }

  for (const mode of ['list', 'stream'] as const) {
    it(`${mode} mode: a claim that only dead-lettered is followed by another at once, so the items behind it do not wait`, async function () {
      const push = (item: Buffer | string) => (mode === 'list' ? r.redis.lpush(keys.queue, item) : r.redis.xadd(keys.queue, '*', 'data', item));
      for (let i = 0; i < 5; i++) await push(bytes(LIMIT * 8));
      await push('small');
      const a = mode === 'list' ? list('a', intake(LIMIT, LIMIT)) : stream('a', intake(LIMIT, LIMIT));
      await a.start();
      const started = Date.now();
      expect((await a.claim(10)).map((c) => c.item.toString())).to.deep.equal(['small']);
      expect(Date.now() - started, 'no blocking wait (1 s for BLMOVE, 500 ms for XREADGROUP here)').to.be.below(450);
      expect(buried.map((b) => b.reason)).to.deep.equal(Array(5).fill('too-large'));
    });
  }

  describe('list mode', function () {
    it('an item over the limit is dead-lettered by Redis (too-large, its size and the limit) under an id of its own, and never returned', async function () {
      const big = bytes(LIMIT + 1);
      await r.redis.lpush(keys.queue, 'before', big, 'after');
      const a = list('a');
      await a.start();
      const claims = await a.claim(10);
      expect(claims.map((c) => c.item.toString())).to.deep.equal(['before', 'after']);
      const [letter, ...more] = await letters();
      expect(more).to.deep.equal([]);
      expectTooLarge(letter, letter!.id, big);
      expect(uuidv7Time(letter!.id), 'a UUIDv7 of the claim').to.equal(uuidv7Time(claims[0]!.id));
      expect(claims.map((c) => c.id)).to.not.include(letter!.id);
      expect(buried).to.deep.equal([{ id: letter!.id, reason: 'too-large', bytes: LIMIT + 1 }]);
      expect(await r.redis.hvals(keys.items)).to.have.members(['before', 'after']);
      expect(await r.redis.llen(keys.queue)).to.equal(0);
    });

    it('an item of exactly the limit goes through; one byte more does not', async function () {
      await r.redis.lpush(keys.queue, bytes(LIMIT, 'a'), bytes(LIMIT + 1, 'b'));
      const a = list('a');
      await a.start();
      expect(sizes(await a.claim(10))).to.deep.equal([LIMIT]);
      expect((await letters()).map((l) => l.item.length)).to.deep.equal([LIMIT + 1]);
    });

    it('the byte budget splits a batch, in order, and always lets one item through', async function () {
      const items = ['a', 'b', 'c', 'd', 'e'].map((c) => bytes(LIMIT, c));
      await r.redis.lpush(keys.queue, ...items);
      const a = list('a', intake(LIMIT, 2 * LIMIT + 10));
      await a.start();
      const firsts: string[][] = [];
      for (let i = 0; i < 3; i++) firsts.push((await a.claim(10)).map((c) => c.item.toString().slice(0, 1)));
      expect(firsts).to.deep.equal([['a', 'b'], ['c', 'd'], ['e']]);
      const tiny = list('tiny', intake(LIMIT, 1));
      await tiny.start();
      await r.redis.lpush(keys.queue, 'x', 'y');
      expect((await tiny.claim(10)).map((c) => c.item.toString()), 'one item even beyond the budget').to.deep.equal(['x']);
      expect(await r.redis.lrange(keys.queue, 0, -1)).to.deep.equal(['y']);
    });

    it('an item over the limit waiting in the processing list (moved by BLMOVE before a crash) is dead-lettered, not stamped', async function () {
      const big = bytes(LIMIT * 2);
      await r.redis.lpush(keys.queue, big, 'next');
      await r.redis.lmove(keys.queue, keys.processing('a'), 'RIGHT', 'LEFT');
      const a = list('a');
      await a.start();
      expect((await a.claim(10)).map((c) => c.item.toString())).to.deep.equal(['next']);
      expectTooLarge((await letters())[0], buried[0]!.id, big);
      expect(await r.redis.llen(keys.processing('a'))).to.equal(0);
    });

    it('a claim repeated with its prefix after it only dead-lettered stamps nothing and dead-letters nothing under the same ids', async function () {
      const scripts = defineScripts(connections().client);
      const prefix = '0190a0a0-0000-7000-8000-00000000';
      const call = async () => {
        const [items, dead] = (await scripts.claim(
          keys.queue, keys.processing('a'), keys.items, keys.claims('a'), keys.attempts, keys.deadLetter, keys.lastClaim,
          'RPOP', 0, prefix, 1, LIMIT, LIMIT, 'a', new Date().toISOString(), SOURCE, ...resultArgs(keys, DEFAULT_RESULT_SETTINGS),
        )) as [Buffer[], (Buffer | number)[]];
        return { items: items.map(String), dead: dead.map(String) };
      };
      await r.redis.lpush(keys.queue, bytes(LIMIT + 1), bytes(LIMIT + 2));
      expect(await call()).to.deep.equal({ items: [], dead: [`${prefix}ffff`, 'too-large', String(LIMIT + 1)] });
      expect(await call(), 'the repeat').to.deep.equal({ items: [], dead: [] });
      expect((await letters()).map((l) => l.id)).to.deep.equal([`${prefix}ffff`]);
      expect(await r.redis.llen(keys.queue)).to.equal(1);
      const result = await new Results(r.redis, keys).get(`${prefix}ffff`);
      expect(result?.state, 'the buried item ends in a result too').to.equal('dead-lettered');
      expect(result?.reason).to.match(/^too-large: /);
      expect(await r.redis.xlen(keys.results), 'one results entry, not one per call').to.equal(1);
    });

    it('a claim held from before (stamped under a larger limit) is dead-lettered on restart with its attempts, not loaded', async function () {
      const big = bytes(LIMIT * 3);
      await r.redis.lpush(keys.queue, big, 'fits');
      const before = list('a', intake(LIMIT * 4, LIMIT * 8));
      await before.start();
      const held = await before.claim(10);
      await before.recordAttempts(held[0]!, 2);
      const own = await list('a').start();
      expect(own.map((c) => c.item.toString())).to.deep.equal(['fits']);
      expectTooLarge((await letters())[0], held[0]!.id, big, 2);
      expect(await r.redis.smembers(keys.claims('a'))).to.deep.equal([held[1]!.id]);
      expect(await r.redis.hexists(keys.attempts, held[0]!.id)).to.equal(0);
    });

    it('a dead replica\'s claim over the limit is dead-lettered on adoption, the rest adopted with their ids', async function () {
      const big = bytes(LIMIT * 3);
      await r.redis.lpush(keys.queue, big, 'fits');
      const dead = list('dead', intake(LIMIT * 4, LIMIT * 8), 500);
      await dead.start();
      const held = await dead.claim(10);
      const live = list('live');
      await live.start();
      await waitUntil(async () => {
        const [lease, [sec]] = await Promise.all([r.redis.zscore(keys.consumers, 'dead'), r.redis.time()]);
        return Number(lease) < Number(sec) * 1000;
      }, 5_000, 'the lease of the dead replica to expire (Redis time)');
      const adopted = await live.renewAndAdopt();
      expect(adopted.map((c) => [c.id, c.item.toString()])).to.deep.equal([[held[1]!.id, 'fits']]);
      expectTooLarge((await letters())[0], held[0]!.id, big);
      expect(await r.redis.smembers(keys.claims('live'))).to.deep.equal([held[1]!.id]);
    });

    it('an item over the limit pushed while BLMOVE waits: the reply is cut off, and the next claim dead-letters the item', async function () {
      const a = list('a');
      await a.start();
      const claiming = a.claim(10);
      await waitUntil(async () => String(await r.redis.call('CLIENT', 'LIST', 'TYPE', 'normal')).includes('cmd=blmove'), 5_000, 'BLMOVE to block');
      const big = bytes(4 * 1024 * 1024);
      await r.redis.lpush(keys.queue, big);
      await waitUntil(() => cuts.length > 0, 5_000, 'the reply to be cut off');
      expect(cuts[0]).to.be.below(LIMIT + 64 * 1024 + 256 * 1024);
      await r.redis.lpush(keys.queue, 'small');
      expect((await claiming).map((c) => c.item.toString())).to.deep.equal(['small']);
      expectTooLarge((await letters())[0], buried[0]!.id, big);
      a.interrupt();
    });
  });

  describe('stream mode', function () {
    it('an entry over the limit is dead-lettered by Redis under its entry id, acknowledged and deleted, and never returned', async function () {
      const big = bytes(LIMIT + 1);
      await r.redis.xadd(keys.queue, '*', 'data', 'before');
      const id = (await r.redis.xadd(keys.queue, '*', 'data', big))!;
      await r.redis.xadd(keys.queue, '*', 'data', 'after');
      const a = stream('a');
      await a.start();
      expect((await a.claim(10)).map((c) => c.item.toString())).to.deep.equal(['before', 'after']);
      const [letter, ...more] = await letters();
      expect(more).to.deep.equal([]);
      expectTooLarge(letter, id, big);
      expect(buried).to.deep.equal([{ id, reason: 'too-large', bytes: LIMIT + 1 }]);
      expect(await r.redis.xrange(keys.queue, id, id)).to.deep.equal([]);
      const pending = (await r.redis.xpending(keys.queue, GROUP, '-', '+', 10)) as [string][];
      expect(pending.map((p) => p[0])).to.not.include(id);
    });

    it('an entry of exactly the limit goes through; without the item field, all its fields count', async function () {
      await r.redis.xadd(keys.queue, '*', 'data', bytes(LIMIT));
      const wide = (await r.redis.xadd(keys.queue, '*', 'a', bytes(LIMIT / 2), 'b', bytes(LIMIT / 2)))!;
      const a = stream('a');
      await a.start();
      expect(sizes(await a.claim(10))).to.deep.equal([LIMIT]);
      const [letter] = await letters();
      expect(letter).to.deep.include({ id: wide });
      expect(JSON.parse(letter!.item.toString())).to.deep.equal({ a: 'x'.repeat(LIMIT / 2), b: 'x'.repeat(LIMIT / 2) });
      expect(letter!.reason).to.match(/^too-large: 1026 bytes/);
    });

    it('the byte budget splits a batch: entries past it stay undelivered, for the next claim', async function () {
      for (const c of ['a', 'b', 'c', 'd', 'e']) await r.redis.xadd(keys.queue, '*', 'data', bytes(LIMIT, c));
      const a = stream('a', intake(LIMIT, 2 * LIMIT + 10));
      await a.start();
      expect((await a.claim(10)).map((c) => c.item.toString().slice(0, 1))).to.deep.equal(['a', 'b']);
      expect(((await r.redis.xpending(keys.queue, GROUP)) as unknown[])[0], 'only the batch is pending').to.equal(2);
      expect((await a.claim(10)).map((c) => c.item.toString().slice(0, 1))).to.deep.equal(['c', 'd']);
      expect((await a.claim(10)).map((c) => c.item.toString().slice(0, 1))).to.deep.equal(['e']);
    });

    it('an entry pending from before (read under a larger limit) is dead-lettered on restart with its attempts', async function () {
      const big = bytes(LIMIT * 3);
      const id = (await r.redis.xadd(keys.queue, '*', 'data', big))!;
      await r.redis.xadd(keys.queue, '*', 'data', 'fits');
      const before = stream('a', intake(LIMIT * 4, LIMIT * 8));
      await before.start();
      const held = await before.claim(10);
      await before.recordAttempts(held[0]!, 3);
      const own = await stream('a').start();
      expect(own.map((c) => c.item.toString())).to.deep.equal(['fits']);
      expectTooLarge((await letters())[0], id, big, 3);
      expect(((await r.redis.xpending(keys.queue, GROUP)) as unknown[])[0]).to.equal(1);
    });

    it('adoption: an idle entry over the limit is dead-lettered; past the budget, the rest are handed back idle for the next sweep', async function () {
      const big = bytes(LIMIT * 3);
      const bigId = (await r.redis.xadd(keys.queue, '*', 'data', big))!;
      for (const c of ['a', 'b', 'c']) await r.redis.xadd(keys.queue, '*', 'data', bytes(LIMIT, c));
      const dead = stream('dead', intake(LIMIT * 4, LIMIT * 16), 300);
      await dead.start();
      expect(await dead.claim(10)).to.have.length(4);
      const live = stream('live', intake(LIMIT, 2 * LIMIT), 300);
      await live.start();
      let adopted: Claim[] = [];
      await waitUntil(async () => (adopted = await live.renewAndAdopt({ held: [], room: 10 })).length > 0, 5_000, 'the entries to be adopted');
      expect(adopted.map((c) => c.item.toString().slice(0, 1))).to.deep.equal(['a', 'b']);
      expectTooLarge((await letters())[0], bigId, big);
      const rest = await live.renewAndAdopt({ held: adopted.map((c) => c.id), room: 10 });
      expect(rest.map((c) => c.item.toString().slice(0, 1)), 'handed back idle: adopted at the next sweep').to.deep.equal(['c']);
    });

    it('an entry over the limit arriving while the claim waits: the reply is cut off, and the entry is dead-lettered once adopted', async function () {
      const a = stream('a', intake(), 500);
      await a.start();
      const claiming = a.claim(10);
      await waitUntil(async () => String(await r.redis.call('CLIENT', 'LIST', 'TYPE', 'normal')).includes('cmd=xreadgroup'), 5_000, 'XREADGROUP to block');
      const big = bytes(4 * 1024 * 1024);
      const id = (await r.redis.xadd(keys.queue, '*', 'data', big))!;
      await waitUntil(() => cuts.length > 0, 5_000, 'the reply to be cut off');
      expect(cuts[0]).to.be.below(LIMIT + 64 * 1024 + 256 * 1024);
      await r.redis.xadd(keys.queue, '*', 'data', 'small');
      const held = await claiming;
      expect(held.map((c) => c.item.toString())).to.deep.equal(['small']);
      await waitUntil(async () => (await a.renewAndAdopt({ held: held.map((c) => c.id), room: 10 })).length === 0 && buried.length > 0, 5_000, 'the adoption');
      expectTooLarge((await letters())[0], id, big);
      a.interrupt();
    });
  });

  describe('on a Redis Cluster', function () {
    let cluster: RedisClusterServers | undefined;
    before(async function () {
      this.timeout(60_000);
      cluster = await startRedisCluster();
    });
    after(async function () {
      await cluster?.stop();
    });

    it('an item over the limit pushed while BLMOVE waits on the slot\'s master: the reply is cut off there, and the item dead-lettered', async function () {
      const nodes = cluster!.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
      const connectCluster = (name: string, blocking = false) => {
        const c = connect({ kind: 'cluster', nodes, tls: false }, name, blocking);
        clusterClients.push(c);
        return c;
      };
      const producer = connectCluster('test-producer');
      const a = new ListSource({
        client: connectCluster('test'), blocking: connectCluster('test-blocking', true), keys, consumer: 'a', pushEnd: 'left', leaseMs: 30_000, blockSeconds: 1, intake: intake(),
      });
      await a.start();
      const claiming = a.claim(10);
      const master = await cluster!.masterOf(keys.queue);
      await waitUntil(async () => (await cluster!.cli(master, 'CLIENT', 'LIST', 'TYPE', 'normal')).includes('cmd=blmove'), 10_000, 'BLMOVE to block');
      const big = bytes(4 * 1024 * 1024);
      await producer.lpush(keys.queue, big);
      await waitUntil(() => cuts.length > 0, 10_000, 'the reply to be cut off');
      await producer.lpush(keys.queue, 'small');
      expect((await claiming).map((c) => c.item.toString())).to.deep.equal(['small']);
      const [letter] = await readDeadLetters(producer, keys.deadLetter);
      expectTooLarge(letter, buried[0]!.id, big);
      a.interrupt();
    });
  });
});
