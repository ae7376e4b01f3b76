/**
 * Whether a queue item is still in flight: claimed by a bridge and not yet acknowledged or
 * dead-lettered, so it may still be delivered (again) under its event id.
 *
 * - list mode: while its event id is a field of the queue's `items` hash, or, for a producer's own
 *   id (ID_FIELD), while the claim its result record names is;
 * - stream mode: while the entry is in the consumer group's pending entries list.
 */
import type { RedisOptions } from 'ioredis';
import { connect, describeTarget, type RedisClient, type RedisTarget } from './connection.ts';
import { queueKeys, type QueueKeys } from './keys.ts';

/** `list`: producers LPUSH/RPUSH; `stream`: producers XADD and the bridge reads with a consumer group. */
export type QueueMode = 'list' | 'stream';

/** Which queue: its Redis, key, mode and (stream mode) consumer group. */
export interface QueueAddress {
  redis: RedisTarget;
  queueKey: string;
  mode: QueueMode;
  group: string;
}

/** Bounds each question, so a Redis outage costs a caller seconds, not its whole deadline. */
const COMMAND_TIMEOUT_MS = 5_000;

export class InFlight {
  /** For logs: where the check looks. */
  readonly describe: string;
  /** Its connection, which other questions about the same queue may share (the reaper's results). */
  readonly client: RedisClient;
  private readonly keys: QueueKeys;
  private readonly mode: QueueMode;
  private readonly group: string;

  /** Connects lazily as `name` (CLIENT LIST); `overrides` adjust the ioredis options (tests: a shorter timeout). */
  constructor(queue: QueueAddress, name: string, overrides: RedisOptions = {}) {
    this.keys = queueKeys(queue.queueKey);
    this.mode = queue.mode;
    this.group = queue.group;
    this.describe = `${queue.mode} ${JSON.stringify(queue.queueKey)} on ${describeTarget(queue.redis)}`;
    this.client = connect(queue.redis, name, false, { commandTimeout: COMMAND_TIMEOUT_MS, lazyConnect: true, ...overrides });
    // Failures surface as rejected questions; the connection's own errors only need a listener.
    this.client.on('error', () => undefined);
  }

  /** Rejects when Redis cannot answer (NOGROUP too: a stream group that does not exist). */
  async isInFlight(eventId: string): Promise<boolean> {
    if (this.mode === 'list') {
      if ((await this.client.hexists(this.keys.items, eventId)) === 1) return true;
      // A producer id (ID_FIELD) names the item's claim in its result record instead.
      const claim = await this.client.hget(this.keys.result(eventId), 'claim');
      return claim !== null && (await this.client.hexists(this.keys.items, claim)) === 1;
    }
    const pending = (await this.client.xpending(this.keys.queue, this.group, eventId, eventId, 1)) as unknown[];
    return pending.length > 0;
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
