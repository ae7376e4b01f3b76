/**
 * The body of the crash-at-every-step test, for any kind of Redis: bridges run as child processes
 * and are killed with SIGKILL at random points while 2,000 items flow to a recording sink; each is
 * restarted, sometimes under the same consumer name (a container restart), sometimes under a new
 * one (a replaced pod). Every item must reach the sink, no item may carry two ids, no id may name
 * two items, and Redis must end empty.
 */
import { expect } from 'chai';
import { Cluster, type Redis } from 'ioredis';
import { queueKeys } from '../../function/queue/keys.ts';
import { BridgeProcess, RecordingSink, identities, pause, randomBetween, waitUntil } from './bridge.ts';

export const CRASH_TOTAL = 2_000;
const KILLS_PER_REPLICA = 10;
const LEASE_MS = 1_500;

export interface CrashRun {
  /** Environment naming the Redis (REDIS_URL, or REDIS_CLUSTER_NODES, ...). */
  redisEnv: Record<string, string>;
  /** A client on the same Redis, for the producer and the checks. */
  redis: Redis | Cluster;
  sink: RecordingSink;
  queue: string;
  mode: 'list' | 'stream';
  replicas: number;
  /** The CloudEvent source every delivery must carry. */
  source: string;
}

export interface CrashResult {
  kills: number;
  requests: number;
  duplicates: number;
}

/** Keys matching `pattern` on every master (one server, or each master of a cluster). */
export async function keysMatching(redis: Redis | Cluster, pattern: string): Promise<string[]> {
  const servers = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const keys: string[] = [];
  for (const server of servers) {
    let cursor = '0';
    do {
      const [next, batch] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys.sort();
}

export async function crashRun(o: CrashRun): Promise<CrashResult> {
  const { redis, sink, queue, mode, replicas } = o;
  const keys = queueKeys(queue);
  const env = (consumer: string) => ({
    ...o.redisEnv,
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
    for (let i = 0; i < CRASH_TOTAL; i += 20) {
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
  const done = () => sink.acceptedBodies().size >= CRASH_TOTAL;
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
  expect(produced).to.equal(CRASH_TOTAL);

  await sink.waitFor(done, 45_000, `all ${CRASH_TOTAL} items at the sink`);
  // A replica killed after a send but before its ack leaves the item claimed under its name; a live
  // replica adopts it once the lease expires, sends it again (same id) and acknowledges it.
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
    // terminate() waits until a replica restarted just now answers: only then is its SIGTERM handler there.
    const exit = await proc.terminate();
    expect(exit, `exit of a bridge: ${proc.stderr.join('')}`).to.deep.equal({ code: 0, signal: null });
  }

  const accepted = sink.accepted();
  const { idsPerBody, bodiesPerId } = identities(accepted);
  const expected = Array.from({ length: CRASH_TOTAL }, (_, i) => `item-${i}`);
  expect([...idsPerBody.keys()].sort()).to.deep.equal(expected.sort());
  const twoIds = [...idsPerBody].filter(([, ids]) => ids.size > 1).map(([body, ids]) => [body, [...ids]]);
  expect(twoIds, 'items delivered with two different ids').to.deep.equal([]);
  const shared = [...bodiesPerId].filter(([, bodies]) => bodies.size > 1).map(([id, bodies]) => [id, [...bodies]]);
  expect(shared, 'ids given to two different items').to.deep.equal([]);
  for (const d of accepted) expect(d.source).to.equal(o.source);

  // Redis ends empty: no claims, leases, attempts or dead letters (the sink accepted everything).
  const left = (await keysMatching(redis, '*')).filter((k) => k.includes(queue));
  if (mode === 'list') expect(left).to.deep.equal([]);
  else {
    expect(left).to.deep.equal([queue]); // the stream itself stays, with its group
    expect(await redis.xlen(queue)).to.equal(0);
    expect(((await redis.xpending(queue, 'job-robot')) as unknown[])[0]).to.equal(0);
  }
  return { kills, requests: sink.deliveries.length, duplicates: accepted.length - CRASH_TOTAL };
}

/**
 * Runs `crashRun`, prints its figures after `label`, and holds the fault schedule to what the test
 * is about: at least three kills per replica while the items flowed.
 */
export async function expectCrashRun(label: string, o: CrashRun): Promise<CrashResult> {
  const result = await crashRun(o);
  process.stderr.write(`      ${label}: ${JSON.stringify(result)}\n`);
  expect(result.kills, 'bridges killed').to.be.at.least(3 * o.replicas);
  return result;
}
