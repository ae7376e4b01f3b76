/**
 * Crash at every step: the bridge runs as a child process and is killed with SIGKILL at random
 * points while 2,000 items flow to a sink that records ids; it is restarted each time, sometimes
 * under the same consumer name (a container restart), sometimes under a new one (a replaced pod).
 * Every item must reach the sink, no item may carry two different ids, and Redis must end empty.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { queueKeys } from '../../function/bridge/keys.ts';
import { BridgeProcess, RecordingSink, allKeys, identities, pause, randomBetween, waitUntil } from '../helpers/bridge.ts';
import { startRedis, uniquePrefix, type RedisServer } from '../helpers/redis.ts';

const TOTAL = 2_000;
const KILLS_PER_REPLICA = 10;
const LEASE_MS = 1_500;

interface RunResult {
  kills: number;
  requests: number;
  duplicates: number;
}

describe('bridge crash at every step: kill -9 while 2,000 items flow', function () {
  this.timeout(180_000);
  let server: RedisServer;
  let redis: Redis;
  let sink: RecordingSink;

  before(async function () {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  after(async function () {
    redis.disconnect();
    await server.stop();
  });
  beforeEach(async function () {
    sink = await new RecordingSink().start();
    // A sink with a little latency, so there are always sends in flight to be cut off.
    sink.respond = async () => {
      await pause(randomBetween(0, 3));
      return 202;
    };
  });
  afterEach(async function () {
    await BridgeProcess.killAll();
    await sink.stop();
  });

  async function run(mode: 'list' | 'stream', replicas: number): Promise<RunResult> {
    const queue = `${uniquePrefix('crash')}queue`;
    const keys = queueKeys(queue);
    const env = (consumer: string) => ({
      REDIS_URL: server.url,
      K_SINK: sink.url,
      QUEUE_KEY: queue,
      MODE: mode,
      CONSUMER: consumer,
      LEASE_MS: String(LEASE_MS),
      CONCURRENCY: '8',
      BACKOFF_MIN_MS: '20',
      BACKOFF_MAX_MS: '500',
      SHUTDOWN_GRACE_MS: '3000',
      LOG_LEVEL: 'info',
    });
    const live = new Map<number, { name: string; proc: BridgeProcess }>();
    for (let r = 0; r < replicas; r++) live.set(r, { name: `r${r}`, proc: new BridgeProcess(env(`r${r}`)) });

    let produced = 0;
    const producer = (async () => {
      for (let i = 0; i < TOTAL; i += 20) {
        const batch = Array.from({ length: 20 }, (_, j) => `item-${i + j}`);
        if (mode === 'list') await redis.lpush(queue, ...batch);
        else {
          const p = redis.pipeline();
          for (const body of batch) p.xadd(queue, '*', 'data', body);
          await p.exec();
        }
        produced += batch.length;
        await pause(randomBetween(40, 120));
      }
    })();

    let kills = 0;
    let generation = 0;
    const done = () => sink.acceptedBodies().size >= TOTAL;
    const killer = async (r: number) => {
      for (let k = 0; k < KILLS_PER_REPLICA && !done(); k++) {
        const current = live.get(r)!;
        await current.proc.port(); // up and claiming...
        await pause(randomBetween(10, 400)); // ...then killed at a random point: the fault schedule
        if (done()) break;
        await current.proc.kill9();
        kills += 1;
        // A third of the restarts come back under a new name, like a replaced pod.
        const name = Math.random() < 1 / 3 ? `r${r}-g${++generation}` : current.name;
        live.set(r, { name, proc: new BridgeProcess(env(name)) });
      }
    };
    await Promise.all([producer, ...[...live.keys()].map(killer)]);
    expect(produced).to.equal(TOTAL);

    await sink.waitFor(done, 45_000, `all ${TOTAL} items at the sink`);
    // The sink having seen every item is not the end: a replica killed after a send but before its
    // ack leaves the item claimed under its name. A live replica adopts it once the lease expires,
    // sends it again (same id) and acknowledges it. Wait for Redis to drain before stopping.
    const liveNames = () => new Set([...live.values()].map((l) => l.name));
    if (mode === 'list') {
      await waitUntil(
        async () =>
          (await redis.zrange(keys.consumers, '0', '-1')).every((c) => liveNames().has(String(c))) && (await redis.hlen(keys.items)) === 0,
        LEASE_MS * 10,
        'dead consumers adopted and every claim acknowledged',
      );
    } else {
      await waitUntil(async () => (await redis.xlen(queue)) === 0, LEASE_MS * 10, 'every entry acknowledged');
    }
    for (const { proc } of live.values()) {
      const exit = await proc.terminate();
      expect(exit, `exit of a bridge: ${proc.stderr.join('')}`).to.deep.equal({ code: 0, signal: null });
    }

    // Every item reached the sink, each with exactly one id, and no id names two items.
    const accepted = sink.accepted();
    const { idsPerBody, bodiesPerId } = identities(accepted);
    const expected = Array.from({ length: TOTAL }, (_, i) => `item-${i}`);
    expect([...idsPerBody.keys()].sort()).to.deep.equal(expected.sort());
    const twoIds = [...idsPerBody].filter(([, ids]) => ids.size > 1).map(([body, ids]) => [body, [...ids]]);
    expect(twoIds, 'items delivered with two different ids').to.deep.equal([]);
    const shared = [...bodiesPerId].filter(([, bodies]) => bodies.size > 1).map(([id, bodies]) => [id, [...bodies]]);
    expect(shared, 'ids given to two different items').to.deep.equal([]);
    for (const d of accepted) expect(d.source).to.equal(`redis://127.0.0.1:${server.port}/0/${queue}`);

    // Redis ends empty: no claims, leases, attempts or dead letters (the sink accepted everything).
    const left = (await allKeys(redis)).filter((k) => k.includes(queue));
    if (mode === 'list') expect(left).to.deep.equal([]);
    else {
      expect(left).to.deep.equal([queue]); // the stream itself stays, with its group
      expect(await redis.xlen(queue)).to.equal(0);
      expect(((await redis.xpending(queue, 'job-robot')) as unknown[])[0]).to.equal(0);
    }
    const result = { kills, requests: sink.deliveries.length, duplicates: accepted.length - TOTAL };
    process.stderr.write(`      ${mode}, ${replicas} replica(s): ${JSON.stringify(result)}\n`);
    return result;
  }

  it('list mode, one replica: every item delivered, one id each, Redis empty', async function () {
    const { kills } = await run('list', 1);
    expect(kills).to.be.at.least(3);
  });

  it('list mode, two replicas killed independently: each item delivered with one id between them', async function () {
    const { kills } = await run('list', 2);
    expect(kills).to.be.at.least(6);
  });

  it('stream mode, one replica: every entry delivered under its entry id, stream and pending list empty', async function () {
    const { kills } = await run('stream', 1);
    expect(kills).to.be.at.least(3);
  });

  it('stream mode, two replicas killed independently', async function () {
    const { kills } = await run('stream', 2);
    expect(kills).to.be.at.least(6);
  });
});
