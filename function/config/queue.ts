/**
 * How the bridge reads its queue and names its events: the variables the bridge and the reaper's
 * in-flight check share, so both see the same queue the same way.
 */
import { z } from 'zod';
import { DEFAULT_RESULT_SETTINGS, type ResultSettings } from '../queue/results.ts';
import { envInt } from './base.ts';

export const queueFields = {
  /** `list`: producers LPUSH/RPUSH; `stream`: producers XADD and the bridge reads with a consumer group. */
  MODE: z.enum(['list', 'stream']).default('list'),
  STREAM_GROUP: z.string().min(1).default('job-robot'),
  /** Pins the event source (part of each Job's identity) when the Redis address may change. */
  EVENT_SOURCE: z.string().min(1).optional(),
};

/**
 * Results (function/queue/results.ts): every part that writes or reads them reads these, so all
 * agree how long a record lives and how long the results stream grows.
 */
export const resultFields = {
  /** Seconds a result record lives after its last change; producer ids are recognised as duplicates this long. */
  RESULT_RETENTION_SECONDS: envInt(60, 366 * 86_400).default(DEFAULT_RESULT_SETTINGS.retentionSeconds),
  /** Entries the results stream keeps (about: trimmed with MAXLEN ~). */
  RESULTS_MAX_LEN: envInt(100, 100_000_000).default(DEFAULT_RESULT_SETTINGS.streamMaxLen),
};

export function resultSettingsOf(env: { RESULT_RETENTION_SECONDS: number; RESULTS_MAX_LEN: number }): ResultSettings {
  return { retentionSeconds: env.RESULT_RETENTION_SECONDS, streamMaxLen: env.RESULTS_MAX_LEN };
}
