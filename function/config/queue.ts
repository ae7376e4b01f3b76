/**
 * How the bridge reads its queue and names its events: the variables the bridge and the reaper's
 * in-flight check share, so both see the same queue the same way.
 */
import { z } from 'zod';

export const queueFields = {
  /** `list`: producers LPUSH/RPUSH; `stream`: producers XADD and the bridge reads with a consumer group. */
  MODE: z.enum(['list', 'stream']).default('list'),
  STREAM_GROUP: z.string().min(1).default('job-robot'),
  /** Pins the event source (part of each Job's identity) when the Redis address may change. */
  EVENT_SOURCE: z.string().min(1).optional(),
};
