/**
 * One look at the queue's Redis, for operators (`job-robot doctor`): connect once without retries,
 * PING, and report how many items wait in the queue. A failure comes back with its cause (found
 * behind a cluster's or the sentinels' summary) and, for a refused password or an untrusted
 * certificate, a hint naming the variable to fix.
 */
import { Cluster } from 'ioredis';
import { connect, describeTarget, type RedisTarget } from './connection.ts';
import { connectionHint, probeConnection, probeOf, telling, type Cause } from './diagnosis.ts';

export type QueueHealth = { ok: true; detail: string } | { ok: false; detail: string; hint?: string | undefined };

/** `name` is the connection's name in CLIENT LIST. */
export async function checkQueue(redis: RedisTarget, queueKey: string, name: string, timeoutMs = 5000): Promise<QueueHealth> {
  const where = describeTarget(redis);
  const client = connect(redis, name, false, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  let cause: Error | undefined;
  client.on('error', (err: Error) => (cause = err));
  // A cluster's and the sentinels' own failures reach only these events, or nothing at all.
  let nodeCause: Cause | undefined;
  if (client instanceof Cluster) client.on('node error', (err: Error, key: string) => (nodeCause ??= { where: key, err, from: 'node' }));
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    const depth = await client.llen(queueKey).catch(() => undefined);
    return { ok: true, detail: `${where} answers PING${depth !== undefined ? `; ${queueKey} holds ${depth} items` : ''}` };
  } catch (err) {
    const summary = cause ?? (err as Error);
    // ioredis sums up a cluster's or the sentinels' failure; one direct connection finds its cause.
    let found: Cause | undefined = telling(summary) ? { where, err: summary, from: 'node' } : nodeCause && telling(nodeCause.err) ? nodeCause : undefined;
    if (!found) {
      const probe = probeOf(client, nodeCause);
      if (probe) found = await probeConnection(probe, Math.min(timeoutMs, 3_000));
    }
    const detail = found && found.err !== summary ? `${where}: ${summary.message} (${found.where}: ${found.err.message})` : `${where}: ${summary.message}`;
    return { ok: false, detail, hint: found ? connectionHint(found.err, found.from) : undefined };
  } finally {
    client.disconnect();
  }
}
