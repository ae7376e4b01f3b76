/** The doctor's Redis check: the bridge's Redis settings reach a server that answers PING (function/queue/health-check.ts). */
import { ConfigError } from '../config/base.ts';
import { loadRedisSettings } from '../config/redis.ts';
import { checkQueue } from '../queue/health-check.ts';
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
  const health = await checkQueue(settings.redis, settings.queueKey, 'job-robot-doctor', timeoutMs);
  if (health.ok) return { check, status: 'ok', detail: health.detail };
  return {
    check,
    status: 'fail',
    detail: health.detail,
    fix: health.hint ?? 'check REDIS_URL (or REDIS_HOST/REDIS_PORT, REDIS_CLUSTER_NODES, REDIS_SENTINELS and REDIS_SENTINEL_MASTER), the password Secrets, TLS settings and network policy',
  };
}
