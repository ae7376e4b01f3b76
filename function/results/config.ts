/**
 * The results function's environment: the queue's Redis (where the records are), how long records
 * live, who may call (the results Trigger's Knative identity), the API deadline for reading the
 * issuer's keys, and how much of a request is held.
 */
import { baseSchema, baseSettings, envInt, parseConfig } from '../config/base.ts';
import { redisFields, redisTargetOf, refineRedis } from '../config/redis.ts';
import { resultFields, resultSettingsOf } from '../config/queue.ts';
import { authFields, authSettings, refineAuth } from '../config/auth.ts';
import { kubeFields } from '../config/kube.ts';
import { DEFAULT_SENDERS } from '../auth/senders.ts';
import { queueKeys } from '../queue/keys.ts';
import { z } from 'zod';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Bytes of a request read and held. The API server stores objects of up to 1.5 MiB (etcd's default
 * request limit), so 2 MiB holds any Job with the event around it.
 */
export const DEFAULT_REQUEST_BYTES = 2 * MiB;

export const resultsSchema = baseSchema
  .extend({
    ...redisFields,
    ...resultFields,
    ...authFields,
    ...kubeFields,
    MAX_REQUEST_BYTES: envInt(64 * KiB, 64 * MiB).default(DEFAULT_REQUEST_BYTES),
  })
  .superRefine(refineRedis)
  .superRefine(refineAuth)
  .transform((env) => ({
    ...baseSettings(env),
    auth: authSettings(env, DEFAULT_SENDERS.results),
    kubeTimeoutSeconds: env.KUBE_TIMEOUT_SECONDS,
    redis: redisTargetOf(env),
    keys: queueKeys(env.QUEUE_KEY),
    results: resultSettingsOf(env),
    maxRequestBytes: env.MAX_REQUEST_BYTES,
  }));

export type ResultsConfig = z.infer<typeof resultsSchema>;

export const loadResultsConfig = (env: NodeJS.ProcessEnv = process.env): ResultsConfig => parseConfig(resultsSchema, env);
