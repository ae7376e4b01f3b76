import { z } from 'zod';
import { baseSchema, baseSettings, envInt, parseConfig } from '../config/base.ts';
import { redisFields, redisTargetOf, refineRedis } from '../config/redis.ts';
import { queueKeys } from '../queue/keys.ts';

/** The dead-letter sink's environment: the bridge's Redis variables, and where dead letters go. */
export const deadLetterSchema = baseSchema
  .extend({
    ...redisFields,
    /** Same default as the bridge: the queue's `{<queue>}:dead-letter` stream. */
    DEAD_LETTER: z.string().min(1).max(1024).optional(),
    MAX_REQUEST_BYTES: envInt(1024, 16 * 1024 * 1024).default(1024 * 1024),
  })
  .superRefine(refineRedis)
  .transform((env) => ({
    ...baseSettings(env),
    redis: redisTargetOf(env),
    deadLetterKey: queueKeys(env.QUEUE_KEY, env.DEAD_LETTER).deadLetter,
    maxRequestBytes: env.MAX_REQUEST_BYTES,
  }));

export type DeadLetterConfig = z.infer<typeof deadLetterSchema>;

export const loadDeadLetterConfig = (env: NodeJS.ProcessEnv = process.env): DeadLetterConfig => parseConfig(deadLetterSchema, env);
