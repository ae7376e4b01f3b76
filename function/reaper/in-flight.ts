/**
 * Whether a Job's queue item may still be delivered again. The launcher is idempotent while the
 * Job exists (a second create of the same name answers 409); once the Job is deleted, a second
 * delivery of the same event would make a new Job. The bridge delivers an item again when it was
 * sent but not acknowledged (the bridge died between the launcher's 2xx and its ack, or the answer
 * was lost), and such an item stays claimed in Redis until it is. So the reaper keeps a finished
 * Job whose event is still in flight (function/queue/in-flight.ts), and deletes it on a later run,
 * once the redelivery has met the existing Job and the bridge has acknowledged the item.
 *
 * Only Jobs whose event came from this queue (the same event source as the bridge's) are checked.
 */
import type { RedisOptions } from 'ioredis';
import { sourceUrl } from '../kube/event-source.ts';
import { InFlight, type QueueAddress } from '../queue/in-flight.ts';

export interface InFlightSettings extends QueueAddress {
  /** The bridge's event source: the `job-robot.dev/event-source` of the Jobs this check can judge. */
  source: string;
}

/** The settings for the bridge's queue as its variables describe it (EVENT_SOURCE pins the source). */
export function inFlightSettings(o: QueueAddress & { eventSource?: string | undefined }): InFlightSettings {
  return { redis: o.redis, queueKey: o.queueKey, mode: o.mode, group: o.group, source: o.eventSource ?? sourceUrl(o.redis, o.queueKey) };
}

/** A question about one event id; rejects when Redis cannot answer (the caller keeps the Job). */
export interface InFlightCheck {
  readonly source: string;
  /** For logs: where the check looks. */
  readonly describe: string;
  isInFlight(eventId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** The in-flight question for the Jobs of one event source. */
export class QueueInFlight extends InFlight implements InFlightCheck {
  readonly source: string;

  constructor(settings: InFlightSettings, overrides: RedisOptions = {}) {
    super(settings, 'job-robot-reaper', overrides);
    this.source = settings.source;
  }
}
