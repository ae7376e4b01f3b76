/**
 * `job-robot status` reads the bridge's variables, so it looks where the bridge writes: the Redis
 * and queue (REDIS_URL ..., QUEUE_KEY, MODE), the event source (EVENT_SOURCE, or the queue's own
 * as the bridge derives it) and, for the Job, NAMESPACE and the API deadline.
 */
import { baseSchema, parseConfig } from '../config/base.ts';
import { kubeFields } from '../config/kube.ts';
import { queueFields } from '../config/queue.ts';
import { redisFields, redisTargetOf, refineRedis } from '../config/redis.ts';
import { sourceUrl } from '../kube/event-source.ts';

const statusSchema = baseSchema
  .extend({ ...kubeFields, ...redisFields, ...queueFields })
  .superRefine(refineRedis)
  .transform((env) => {
    const redis = redisTargetOf(env);
    return {
      namespace: env.NAMESPACE,
      kubeTimeoutSeconds: env.KUBE_TIMEOUT_SECONDS,
      redis,
      queueKey: env.QUEUE_KEY,
      mode: env.MODE,
      /** The event source the bridge sends: with the id, it names the item's Job. */
      source: env.EVENT_SOURCE ?? sourceUrl(redis, env.QUEUE_KEY),
    };
  });

export type StatusConfig = ReturnType<typeof statusSchema.parse>;

/** Throws ConfigError naming the variable. */
export const loadStatusConfig = (env: NodeJS.ProcessEnv = process.env): StatusConfig => parseConfig(statusSchema, env);
