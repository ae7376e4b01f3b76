/**
 * The body of a failover test, for Redis Cluster and Sentinel alike: bridges deliver items to a
 * recording sink while a producer pushes batches, each followed by `WAIT 1 <ms>` on the same
 * connection; the producer counts an item as acknowledged only when Redis confirmed the push and
 * WAIT confirmed that a replica has it. Partway through, the master holding the queue is killed
 * with SIGKILL and a replica takes over. At the end every acknowledged item must have reached the
 * sink under one id, or sit in the dead-letter stream.
 *
 * The producer talks to the current master over a plain connection with no retries, so a push
 * either ran once or is reported failed: a failed batch is neither counted nor pushed again.
 */
import { expect } from 'chai';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { readDeadLetters } from './dead-letters.ts';
import { queueKeys } from '../../function/queue/keys.ts';
import { BridgeProcess, RecordingSink, identities, pause, waitUntil } from './bridge.ts';
import type { RedisDeployment } from './redis-deployment.ts';
import { uniquePrefix } from './redis.ts';

export interface FailoverRun {
  redisEnv: Record<string, string>;
  /** A client that follows failovers (Cluster or Sentinel), for the checks. */
  redis: Redis | Cluster;
  /** Password and TLS for the producer's direct connection to the master, when Redis requires them. */
  producer?: RedisOptions;
  /** The port of the master that holds `queue` now. */
  masterPort(): Promise<number>;
  /** Kills that master with SIGKILL and resolves once a replica took over. */
  failover(): Promise<{ killed: number; promoted: number }>;
  sink: RecordingSink;
  queue: string;
  mode: 'list' | 'stream';
  replicas: number;
  total: number;
  /** Items pushed before the master is killed. */
  killAfter: number;
}

export interface FailoverResult {
  killed: number;
  promoted: number;
  /** Items WAIT confirmed on a replica. */
  acknowledged: number;
  /** Pushes that failed or that WAIT did not confirm (not counted). */
  unconfirmed: number;
  /** Acknowledged items neither at the sink nor dead-lettered. */
  lost: number;
  /** Items delivered under two or more ids (two Jobs). */
  duplicated: number;
  /** Acknowledged deliveries of an id the sink had already accepted (the launcher dedups these). */
  redelivered: number;
  deadLettered: number;
  failoverMs: number;
}

const BATCH = 10;
const WAIT_MS = 500;

export async function failoverRun(o: FailoverRun): Promise<FailoverResult> {
  const keys = queueKeys(o.queue);
  const bridges = Array.from({ length: o.replicas }, (_, r) => new BridgeProcess({
    ...o.redisEnv,
    K_SINK: o.sink.url,
    QUEUE_KEY: o.queue,
    MODE: o.mode,
    CONSUMER: `f${r}`,
    LEASE_MS: '2000',
    CONCURRENCY: '8',
    BACKOFF_MIN_MS: '20',
    BACKOFF_MAX_MS: '500',
    SHUTDOWN_GRACE_MS: '3000',
    LOG_LEVEL: 'info',
  }));
  await Promise.all(bridges.map((b) => b.port()));

  const acknowledged = new Set<string>();
  let unconfirmed = 0;
  let pushed = 0;
  let next = 0;
  let failedOver: Promise<{ killed: number; promoted: number }> | undefined;
  let failoverMs = 0;
  let conn: Redis | undefined;
  const producerConnection = async (): Promise<Redis> => {
    if (conn && conn.status === 'ready') return conn;
    conn?.disconnect();
    const port = await o.masterPort();
    conn = new Redis({ ...o.producer, host: '127.0.0.1', port, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
    conn.on('error', () => undefined);
    await conn.connect();
    return conn;
  };
  const deadline = Date.now() + 90_000;
  while (acknowledged.size < o.total) {
    if (Date.now() > deadline) throw new Error(`producer: only ${acknowledged.size} of ${o.total} items acknowledged within 90 s`);
    if (!failedOver && pushed >= o.killAfter) {
      const started = Date.now();
      failedOver = o.failover().then((r) => {
        failoverMs = Date.now() - started;
        return r;
      });
    }
    const batch = Array.from({ length: BATCH }, () => `item-${next++}`);
    try {
      const c = await producerConnection();
      conn = c;
      const p = c.pipeline();
      if (o.mode === 'list') p.lpush(o.queue, ...batch);
      else for (const body of batch) p.xadd(o.queue, '*', 'data', body);
      p.call('WAIT', '1', String(WAIT_MS));
      const replies = (await p.exec()) ?? [];
      const failed = replies.some(([err]) => err);
      const replicas = Number(replies[replies.length - 1]?.[1] ?? 0);
      if (!failed && replicas >= 1) for (const b of batch) acknowledged.add(b);
      else unconfirmed += batch.length;
      if (failed) {
        // MOVED after a reshard, READONLY from a demoted master: ask where the master is now.
        conn.disconnect();
        conn = undefined;
        await pause(100);
      }
    } catch {
      // The master is gone (or not yet known): this batch is not acknowledged; try the next one.
      unconfirmed += batch.length;
      conn?.disconnect();
      conn = undefined;
      await pause(100);
    }
    pushed += batch.length;
    await pause(15);
  }
  conn?.disconnect();
  const { killed, promoted } = await failedOver!;

  const deadLettered = async () => new Set((await readDeadLetters(o.redis, keys.deadLetter)).map((d) => d.item.toString('latin1')));
  const settled = async () => {
    const delivered = o.sink.acceptedBodies();
    const dead = await deadLettered();
    return [...acknowledged].every((b) => delivered.has(b) || dead.has(b));
  };
  await waitUntil(settled, 60_000, 'every acknowledged item at the sink or dead-lettered', 200).catch(() => undefined);
  // Let anything still claimed drain (adoptions after the failover) before the bridges stop.
  if (o.mode === 'list') {
    await waitUntil(async () => (await o.redis.hlen(keys.items)) === 0 && (await o.redis.llen(o.queue)) === 0, 20_000, 'claims acknowledged', 200).catch(() => undefined);
  } else {
    await waitUntil(async () => (await o.redis.xlen(o.queue)) === 0, 20_000, 'stream drained', 200).catch(() => undefined);
  }
  for (const b of bridges) await b.terminate();

  const accepted = o.sink.accepted();
  const delivered = o.sink.acceptedBodies();
  const dead = await deadLettered();
  const { idsPerBody } = identities(accepted);
  const seen = new Set<string>();
  let redelivered = 0;
  for (const d of accepted) {
    if (seen.has(d.id)) redelivered += 1;
    seen.add(d.id);
  }
  return {
    killed,
    promoted,
    acknowledged: acknowledged.size,
    unconfirmed,
    lost: [...acknowledged].filter((b) => !delivered.has(b) && !dead.has(b)).length,
    duplicated: [...idsPerBody.values()].filter((ids) => ids.size > 1).length,
    redelivered,
    deadLettered: dead.size,
    failoverMs,
  };
}

/**
 * List mode as a deployment with replicas should run it (README): a claim is sent once a replica
 * holds it. Short, as the promoted master has no replica left.
 */
export const CLAIM_WAIT = { CLAIM_WAIT_REPLICAS: '1', CLAIM_WAIT_MS: '100' };

/** Prints the run's figures under `label` and holds it to the promise: a failover happened, no acknowledged item was lost, none got two ids. */
export function expectNothingLost(label: string, result: FailoverResult): void {
  process.stderr.write(`      ${label}: ${JSON.stringify(result)}\n`);
  expect(result.promoted).to.not.equal(result.killed);
  expect(result.lost, 'acknowledged items lost').to.equal(0);
  expect(result.duplicated, 'items delivered under two ids').to.equal(0);
}

export interface FailoverCase {
  mode: 'list' | 'stream';
  /** What happens to the queue's master once `killAfter` items were pushed; default: killed. */
  failover?: (queue: string) => Promise<{ killed: number; promoted: number }>;
  /** Items to acknowledge in all (default 1,500), and to push before the failover (default 400). */
  total?: number;
  killAfter?: number;
}

/**
 * The body of every failover test, whatever the Redis: two bridges (list mode with CLAIM_WAIT) on
 * a new queue of `redis` while the producer pushes, the queue's master failed over partway; then
 * `expectNothingLost`.
 */
export async function expectFailoverLosesNothing(label: string, redis: RedisDeployment, sink: RecordingSink, c: FailoverCase): Promise<FailoverResult> {
  const queue = `${uniquePrefix(`failover-${c.mode}`)}queue`;
  const failover = c.failover ?? ((q: string) => redis.killMaster(q));
  const result = await failoverRun({
    redisEnv: { ...redis.env, ...CLAIM_WAIT },
    redis: redis.client,
    producer: redis.producer,
    masterPort: () => redis.masterPort(queue),
    failover: () => failover(queue),
    sink,
    queue,
    mode: c.mode,
    replicas: 2,
    total: c.total ?? 1_500,
    killAfter: c.killAfter ?? 400,
  });
  expectNothingLost(label, result);
  return result;
}
