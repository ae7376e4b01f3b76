/**
 * Whether a Job's queue item may still be delivered again. The launcher is idempotent while the
 * Job exists (a second create of the same name answers 409); once the Job is deleted, a second
 * delivery of the same event would make a new Job. The bridge delivers an item again when it was
 * sent but not acknowledged (the bridge died between the launcher's 2xx and its ack, or the answer
 * was lost), and such an item stays claimed in Redis until it is. So the reaper keeps a finished
 * Job whose event is still claimed, and deletes it on a later run, once the redelivery has met the
 * existing Job and the bridge has acknowledged the item.
 *
 * - list mode: the item is in flight while its event id is a field of the queue's `items` hash;
 * - stream mode: while the entry is in the consumer group's pending entries list.
 *
 * Only Jobs whose event came from this queue (the same event source as the bridge's) are checked.
 */
import type { RedisOptions } from 'ioredis';
import { queueKeys, type QueueKeys } from '../queue/keys.ts';
import { connect, describeTarget, type RedisClient, type RedisTarget } from '../queue/connection.ts';
import { sourceUrl } from '../kube/event-source.ts';
import type { QueueMode } from '../config/queue.ts';

export interface InFlightSettings {
  redis: RedisTarget;
  queueKey: string;
  mode: QueueMode;
  group: string;
  /** The bridge's event source: the `job-robot.dev/event-source` of the Jobs this check can judge. */
  source: string;
}

/** The settings for the bridge's queue as its variables describe it (EVENT_SOURCE pins the source). */
export function inFlightSettings(o: { redis: RedisTarget; queueKey: string; mode: QueueMode; group: string; eventSource?: string | undefined }): InFlightSettings {
  return { redis: o.redis, queueKey: o.queueKey, mode: o.mode, group: o.group, source: o.eventSource ?? sourceUrl(o.redis, o.queueKey) };
}

/** A question about one event id; rejects when Redis cannot answer (the caller keeps the Job). */
export interface InFlightCheck {
  readonly source: string;
  /** For logs: where the check looks. */
  readonly describe: string;
  inFlight(eventId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Bounds each question, so a Redis outage costs a reaper run seconds, not its whole deadline. */
const COMMAND_TIMEOUT_MS = 5_000;

export class QueueInFlight implements InFlightCheck {
  readonly source: string;
  readonly describe: string;
  private readonly client: RedisClient;
  private readonly keys: QueueKeys;
  private readonly mode: QueueMode;
  private readonly group: string;

  constructor(settings: InFlightSettings, overrides: RedisOptions = {}) {
    this.source = settings.source;
    this.keys = queueKeys(settings.queueKey);
    this.mode = settings.mode;
    this.group = settings.group;
    this.describe = `${settings.mode} ${JSON.stringify(settings.queueKey)} on ${describeTarget(settings.redis)}`;
    this.client = connect(settings.redis, 'job-robot-reaper', false, { commandTimeout: COMMAND_TIMEOUT_MS, lazyConnect: true, ...overrides });
    // Failures surface as rejected questions; the connection's own errors only need a listener.
    this.client.on('error', () => undefined);
  }

  async inFlight(eventId: string): Promise<boolean> {
    if (this.mode === 'list') return (await this.client.hexists(this.keys.items, eventId)) === 1;
    // NOGROUP (a group that does not exist) rejects too: the Job is kept, and the warning names it.
    const pending = (await this.client.xpending(this.keys.queue, this.group, eventId, eventId, 1)) as unknown[];
    return pending.length > 0;
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
