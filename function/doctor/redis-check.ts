/** The doctor's Redis check: the bridge's Redis settings reach a server that answers PING. */
import { ConfigError } from '../config/base.ts';
import { loadRedisSettings } from '../config/redis.ts';
import { connect, describeTarget } from '../bridge/redis.ts';
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
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    const depth = await client.llen(settings.queueKey).catch(() => undefined);
    return { check, status: 'ok', detail: `${where} answers PING${depth !== undefined ? `; ${settings.queueKey} holds ${depth} items` : ''}` };
  } catch (err) {
    return { check, status: 'fail', detail: `${where}: ${(cause ?? (err as Error)).message}`, fix: 'check REDIS_URL (or REDIS_HOST/REDIS_PORT, REDIS_CLUSTER_NODES, REDIS_SENTINELS and REDIS_SENTINEL_MASTER), the password Secrets, TLS settings and network policy' };
  } finally {
    client.disconnect();
  }
}
