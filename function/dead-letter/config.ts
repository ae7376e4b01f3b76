import { z } from 'zod';
import { baseSchema, baseSettings, envInt, parseConfig } from '../config/base.ts';
import { redisFields, redisTargetOf, refineDeadLetterSlot, refineRedis } from '../config/redis.ts';
import { authFields, authSettings, refineAuth } from '../config/auth.ts';
import { kubeFields } from '../config/kube.ts';
import { DEFAULT_SENDERS } from '../auth/senders.ts';
import { queueKeys } from '../queue/keys.ts';
import { QUEUE_ITEM_TYPE } from '../events.ts';
import { resultFields, resultSettingsOf } from '../config/queue.ts';

const MiB = 1024 * 1024;

/**
 * The least MAX_REQUEST_BYTES the sink accepts: the launcher's default request limit (1 MiB) plus
 * 64 KiB for what Knative adds to a dead-lettered event (knativeerror* attributes, the launcher's
 * answer), so whatever the launcher refused as too large still reaches the sink whole. With a
 * larger launcher MAX_REQUEST_BYTES, raise the sink's above it by the same margin.
 */
export const MIN_REQUEST_BYTES = MiB + 64 * 1024;

/** The dead-letter sink's environment: the bridge's Redis variables, and where dead letters go. */
export const deadLetterSchema = baseSchema
  .extend({
    ...redisFields,
    ...authFields,
    ...kubeFields,
    ...resultFields,
    /** The bridge's EVENT_TYPE: only letters of this type end a queue item's result. */
    EVENT_TYPE: z.string().min(1).default(QUEUE_ITEM_TYPE),
    /** Same default as the bridge: the queue's `{<queue>}:dead-letter` stream. */
    DEAD_LETTER: z.string().min(1).max(1024).optional(),
    /** Bytes of a request read and held; beyond it the body is only hashed and counted. */
    MAX_REQUEST_BYTES: z.coerce
      .number()
      .int()
      .min(MIN_REQUEST_BYTES, `must be at least ${MIN_REQUEST_BYTES} (1 MiB + 64 KiB), above the launcher's request limit`)
      .max(64 * MiB)
      .default(8 * MiB),
    /** Bytes of one item (and of one event's JSON) written to the stream; beyond it, its first bytes with size and SHA-256. */
    DEAD_LETTER_MAX_ITEM_BYTES: envInt(1024, 64 * MiB).default(MiB),
  })
  .superRefine(refineRedis)
  .superRefine(refineAuth)
  .superRefine(refineDeadLetterSlot)
  .superRefine((env, ctx) => {
    if (env.MAX_REQUEST_BYTES >= MIN_REQUEST_BYTES && env.DEAD_LETTER_MAX_ITEM_BYTES > env.MAX_REQUEST_BYTES) {
      ctx.addIssue({ code: 'custom', path: ['DEAD_LETTER_MAX_ITEM_BYTES'], message: `must not exceed MAX_REQUEST_BYTES (${env.MAX_REQUEST_BYTES})` });
    }
  })
  .transform((env) => ({
    ...baseSettings(env),
    auth: authSettings(env, DEFAULT_SENDERS.deadLetter),
    kubeTimeoutSeconds: env.KUBE_TIMEOUT_SECONDS,
    redis: redisTargetOf(env),
    keys: queueKeys(env.QUEUE_KEY, env.DEAD_LETTER),
    results: resultSettingsOf(env),
    itemType: env.EVENT_TYPE,
    maxRequestBytes: env.MAX_REQUEST_BYTES,
    maxItemBytes: env.DEAD_LETTER_MAX_ITEM_BYTES,
  }));

export type DeadLetterConfig = z.infer<typeof deadLetterSchema>;

export const loadDeadLetterConfig = (env: NodeJS.ProcessEnv = process.env): DeadLetterConfig => parseConfig(deadLetterSchema, env);
