import { z } from 'zod';
import { baseSchema, baseSettings, envBoolean, envInt, parseConfig } from '../config/base.ts';
import { kubeFields } from '../config/kube.ts';
import { authFields, authSettings, refineAuth } from '../config/auth.ts';
import { DEFAULT_SENDERS } from '../auth/senders.ts';
import { queueFields, resultFields, resultSettingsOf } from '../config/queue.ts';
import { redisFields, redisTargetOf, refineRedis } from '../config/redis.ts';
import { inFlightSettings, type InFlightSettings } from './in-flight.ts';
import type { Policy } from './policy.ts';

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * Milliseconds in a duration written `1h`, `30m`, `90s`, `7d`, `1h30m` (units in that order), or a
 * bare number of seconds. Undefined when the text is none of these.
 */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const m = DURATION.exec(t);
  if (!t || !m) return undefined;
  const [, d = '0', h = '0', min = '0', s = '0'] = m;
  return Number(d) * UNIT_MS.d + Number(h) * UNIT_MS.h + Number(min) * UNIT_MS.m + Number(s) * UNIT_MS.s;
}

/** Longest retention accepted: ten years, far past anything sensible, well inside a Date. */
const MAX_AGE_MS = 10 * 365 * UNIT_MS.d;

const envDuration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms > MAX_AGE_MS) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration such as 90s, 30m, 1h, 7d or 1h30m (at most 3650d)' });
    return z.NEVER;
  }
  return ms;
});

/**
 * The reaper's environment: the shared base plus retention (per class: maximum age after
 * finishing, and how many of the newest are always kept), concurrency, page size and dry run; and,
 * when a Redis address is given, the bridge's queue variables for the in-flight check.
 */
const reaperEnv = baseSchema.extend({
  ...kubeFields,
  ...authFields,
  ...redisFields,
  ...queueFields,
  ...resultFields,
  /** Longer than the Trigger's retry span (config/broker.yaml, about 68 min): while the Job exists, a Broker redelivery meets it. */
  REAPER_SUCCEEDED_MAX_AGE: envDuration.default(2 * UNIT_MS.h),
  REAPER_FAILED_MAX_AGE: envDuration.default(24 * UNIT_MS.h),
  /** Kept in a bounded heap while streaming, hence the ceiling. */
  REAPER_SUCCEEDED_KEEP: envInt(0, 10_000).default(0),
  REAPER_FAILED_KEEP: envInt(0, 10_000).default(5),
  /** Deletions in flight at once. */
  REAPER_CONCURRENCY: envInt(1, 100).default(10),
  /** Jobs per list page (`limit`); memory scales with this, not with the namespace. */
  REAPER_PAGE_SIZE: envInt(1, 5000).default(500),
  /** Report what would be deleted, delete nothing. */
  REAPER_DRY_RUN: envBoolean.default(false),
});

export const reaperSchema = reaperEnv.superRefine(refineRedis).superRefine(refineAuth).transform((env) => ({
  ...baseSettings(env),
  auth: authSettings(env, DEFAULT_SENDERS.reaper),
  kubeTimeoutSeconds: env.KUBE_TIMEOUT_SECONDS,
  policy: {
    succeeded: { maxAgeMs: env.REAPER_SUCCEEDED_MAX_AGE, keep: env.REAPER_SUCCEEDED_KEEP },
    failed: { maxAgeMs: env.REAPER_FAILED_MAX_AGE, keep: env.REAPER_FAILED_KEEP },
  } satisfies Policy,
  concurrency: env.REAPER_CONCURRENCY,
  pageSize: env.REAPER_PAGE_SIZE,
  dryRun: env.REAPER_DRY_RUN,
  /** The bridge's queue for the in-flight check and the results backstop; undefined (both off) without a Redis address. */
  queue: queueOf(env),
  /** How long the results the reaper records live, and the results stream's cap (the bridge's settings). */
  results: resultSettingsOf(env),
}));

export type ReaperConfig = z.infer<typeof reaperSchema>;

export const loadReaperConfig = (env: NodeJS.ProcessEnv = process.env): ReaperConfig => parseConfig(reaperSchema, env);

/** Variables that name a Redis; any one of them turns the in-flight check and the results backstop on. */
const REDIS_ADDRESS = ['REDIS_URL', 'REDIS_HOST', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const;

/**
 * The bridge's queue, when the variables name a Redis: the reaper then keeps expired Jobs whose
 * queue item is still in flight (function/reaper/in-flight.ts). Undefined otherwise.
 */
function queueOf(env: z.infer<typeof reaperEnv>): InFlightSettings | undefined {
  if (!REDIS_ADDRESS.some((v) => env[v] !== undefined)) return undefined;
  return inFlightSettings({
    redis: redisTargetOf(env),
    queueKey: env.QUEUE_KEY,
    mode: env.MODE,
    group: env.STREAM_GROUP,
    eventSource: env.EVENT_SOURCE,
  });
}
