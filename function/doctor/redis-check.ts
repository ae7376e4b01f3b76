/** The doctor's Redis check: the bridge's Redis settings reach a server that answers PING. */
import { ConfigError } from '../config/base.ts';
import { loadRedisSettings } from '../config/redis.ts';
import { Cluster } from 'ioredis';
import { connect, describeTarget } from '../queue/connection.ts';
import { connectionHint, probeConnection, probeOf, telling, type Cause } from '../queue/diagnosis.ts';
import type { CheckResult } from './checks.ts';

export async function checkRedis(env: NodeJS.ProcessEnv, timeoutMs = 5000): Promise<CheckResult> {
  const check = 'Redis';
  let settings;
  try {
    settings = loadRedisSettings(env);
  } catch (err) {
    if (err instanceof ConfigError) return { check, status: 'fail', detail: err.message, fix: 'correct the REDIS_* variables (config/redis.env)' };
    throw err;
  }
  const where = describeTarget(settings.redis);
  const client = connect(settings.redis, 'job-robot-doctor', false, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
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
    const depth = await client.llen(settings.queueKey).catch(() => undefined);
    return { check, status: 'ok', detail: `${where} answers PING${depth !== undefined ? `; ${settings.queueKey} holds ${depth} items` : ''}` };
  } catch (err) {
    const summary = cause ?? (err as Error);
    // ioredis sums up a cluster's or the sentinels' failure; one direct connection finds its cause.
    let found: Cause | undefined = telling(summary) ? { where, err: summary, from: 'node' } : nodeCause && telling(nodeCause.err) ? nodeCause : undefined;
    if (!found) {
      const probe = probeOf(client, nodeCause);
      if (probe) found = await probeConnection(probe, Math.min(timeoutMs, 3_000));
    }
    const hint = found ? connectionHint(found.err, found.from) : undefined;
    const detail = found && found.err !== summary ? `${where}: ${summary.message} (${found.where}: ${found.err.message})` : `${where}: ${summary.message}`;
    return {
      check,
      status: 'fail',
      detail,
      fix: hint ?? 'check REDIS_URL (or REDIS_HOST/REDIS_PORT, REDIS_CLUSTER_NODES, REDIS_SENTINELS and REDIS_SENTINEL_MASTER), the password Secrets, TLS settings and network policy',
    };
  } finally {
    client.disconnect();
  }
}
