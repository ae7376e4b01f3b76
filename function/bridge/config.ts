/**
 * The bridge's configuration: environment variables, read once at start. A wrong value stops the
 * process with the variable's name (function/config/base.ts).
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { baseSchema, baseSettings, envBoolean, envInt, envPem, parseConfig } from '../config/base.ts';
import { queueFields, resultFields, resultSettingsOf } from '../config/queue.ts';
import { redisFields, redisTargetOf, refineDeadLetterSlot, refineRedis } from '../config/redis.ts';
import { QUEUE_ITEM_TYPE } from '../events.ts';
import { sourceUrl } from '../kube/event-source.ts';

/** Attribute names an override may not replace (CloudEvents context attributes). */
const RESERVED_ATTRIBUTES = new Set(['specversion', 'id', 'source', 'type', 'datacontenttype', 'dataschema', 'subject', 'time', 'data', 'data_base64']);

/** `K_CE_OVERRIDES`: `{"extensions": {"name": value}}`, names lower-case a-z0-9 (CloudEvents rule). */
const overridesSchema = z.object({
  extensions: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))
    .default({})
    .superRefine((extensions, ctx) => {
      for (const name of Object.keys(extensions)) {
        if (!/^[a-z0-9]{1,20}$/.test(name)) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'extension names are 1-20 lower-case letters or digits' });
        } else if (RESERVED_ATTRIBUTES.has(name)) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'cannot override a CloudEvents context attribute' });
        }
      }
    }),
});

const jsonText = z.string().transform((text, ctx): unknown => {
  try {
    return JSON.parse(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `must be JSON (${(err as Error).message})` });
    return z.NEVER;
  }
});

/** Where Knative's SinkBinding mounts the source's OIDC token (knative.dev/eventing sinkbinding_lifecycle.go). */
export const DEFAULT_TOKEN_FILE = '/oidc/token';

const consumerName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/, 'must be 1-200 letters, digits, ".", "_" or "-"');

export const bridgeSchema = baseSchema
  .extend({
    ...redisFields,
    ...queueFields,
    ...resultFields,
    /**
     * List mode: the field of a JSON item that holds the producer's own id for it, which then
     * becomes its event id (function/queue/producer-id.ts). Unset: every item gets a UUIDv7.
     */
    ID_FIELD: z.string().min(1).max(128).optional(),
    /** The end producers push to: left (LPUSH) or right (RPUSH). The bridge takes from the other end. */
    LIST_END: z.enum(['left', 'right']).default('left'),
    /** The stream entry field holding the item; entries without it are sent as a JSON object of their fields. */
    STREAM_FIELD: z.string().min(1).default('data'),
    /** XDEL entries once acknowledged, so the stream does not grow without end. */
    STREAM_DELETE_ACKED: envBoolean.default(true),

    CONCURRENCY: envInt(1, 1024).default(16),
    /**
     * Longest item the bridge takes, measured in Redis; a longer one goes to the dead-letter stream
     * (reason too-large) without being loaded. The default is the launcher's MAX_EVENT_BYTES: the
     * item becomes CE_DATA, so a longer one could only end in a 413 there.
     */
    MAX_ITEM_BYTES: envInt(1024, 16 * 1024 * 1024).default(64 * 1024),
    MAX_ATTEMPTS: envInt(1, 100_000).default(20),
    BACKOFF_MIN_MS: envInt(1, 3_600_000).default(200),
    BACKOFF_MAX_MS: envInt(1, 3_600_000).default(60_000),
    SEND_TIMEOUT_MS: envInt(100, 3_600_000).default(15_000),
    LEASE_MS: envInt(500, 3_600_000).default(30_000),
    /** List mode: replicas that must hold a batch's claim before it is sent (Redis WAIT); 0 waits for none. */
    CLAIM_WAIT_REPLICAS: envInt(0, 64).default(0),
    /** How long a claim waits for CLAIM_WAIT_REPLICAS before the batch is sent anyway (and counted). */
    CLAIM_WAIT_MS: envInt(1, 60_000).default(1_000),
    SHUTDOWN_GRACE_MS: envInt(0, 3_600_000).default(20_000),
    CONSUMER: consumerName.optional(),
    HOSTNAME: z.string().optional(),
    DEAD_LETTER: z.string().min(1).max(1024).optional(),

    K_SINK: z.url({
      protocol: /^https?$/,
      error: (issue) => (issue.input === undefined ? 'is required (the ContainerSource sets it)' : 'must be an http:// or https:// URL'),
    }),
    K_CE_OVERRIDES: jsonText.pipe(overridesSchema).optional(),
    K_CA_CERTS: envPem.optional(),
    EVENT_TYPE: z.string().min(1).default(QUEUE_ITEM_TYPE),
    /**
     * The OIDC token the bridge sends to K_SINK as `Authorization: Bearer`. Knative's SinkBinding
     * mounts it at /oidc/token when `authentication-oidc` is on; without the file no token is sent.
     * Set explicitly, the file must be there at start.
     */
    OIDC_TOKEN_FILE: z.string().min(1).max(4096).optional(),
    /** How often the token file is checked for a rotated token. */
    OIDC_TOKEN_CHECK_MS: envInt(100, 600_000).default(5_000),
  })
  .superRefine((env, ctx) => {
    const issue = (variable: string, message: string) => ctx.addIssue({ code: 'custom', path: [variable], message });
    refineRedis(env, ctx);
    if (env.BACKOFF_MIN_MS > env.BACKOFF_MAX_MS) issue('BACKOFF_MIN_MS', `must not exceed BACKOFF_MAX_MS (${env.BACKOFF_MAX_MS})`);
    refineDeadLetterSlot(env, ctx);
    if (env.ID_FIELD !== undefined && env.MODE === 'stream') {
      issue('ID_FIELD', 'applies to list mode only: in stream mode the event id is the entry id XADD returned to the producer');
    }
    if (!env.CONSUMER) {
      const fallback = env.HOSTNAME || hostname();
      if (!consumerName.safeParse(fallback).success) issue('CONSUMER', `not set, and HOSTNAME ${JSON.stringify(fallback)} is not a usable consumer name`);
    }
  })
  .transform((env) => {
    const redis = redisTargetOf(env);
    return {
      ...baseSettings(env),
      redis,
      queueKey: env.QUEUE_KEY,
      deadLetterKey: env.DEAD_LETTER,
      mode: env.MODE,
      listEnd: env.LIST_END,
      stream: { group: env.STREAM_GROUP, field: env.STREAM_FIELD, deleteAcked: env.STREAM_DELETE_ACKED },
      concurrency: env.CONCURRENCY,
      /** One claim's items stay within CONCURRENCY items of the limit, together. */
      intake: { maxItemBytes: env.MAX_ITEM_BYTES, batchBytes: env.CONCURRENCY * env.MAX_ITEM_BYTES, results: resultSettingsOf(env) },
      idField: env.ID_FIELD,
      maxAttempts: env.MAX_ATTEMPTS,
      backoff: { minMs: env.BACKOFF_MIN_MS, maxMs: env.BACKOFF_MAX_MS },
      sendTimeoutMs: env.SEND_TIMEOUT_MS,
      leaseMs: env.LEASE_MS,
      claimWait: { replicas: env.CLAIM_WAIT_REPLICAS, timeoutMs: env.CLAIM_WAIT_MS },
      shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
      consumer: env.CONSUMER ?? (env.HOSTNAME || hostname()),
      sink: env.K_SINK,
      caCerts: env.K_CA_CERTS,
      token: {
        file: env.OIDC_TOKEN_FILE ?? DEFAULT_TOKEN_FILE,
        required: env.OIDC_TOKEN_FILE !== undefined,
        checkEveryMs: env.OIDC_TOKEN_CHECK_MS,
      },
      event: {
        type: env.EVENT_TYPE,
        source: env.EVENT_SOURCE ?? sourceUrl(redis, env.QUEUE_KEY),
        extensions: env.K_CE_OVERRIDES?.extensions ?? {},
      },
    };
  });

export type BridgeConfig = z.infer<typeof bridgeSchema>;

/** Parses the bridge's environment; throws ConfigError naming each bad variable. */
export function loadBridgeConfig(env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  return parseConfig(bridgeSchema, env);
}
