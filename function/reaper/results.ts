/**
 * The results of the bridge's queue (function/queue/results.ts), as the reaper reads and writes
 * them: the records of many event ids in one round trip, and the final states it records itself
 * from the Jobs (backstop.ts). Only Jobs whose event came from this queue (the bridge's event
 * source) have their results here.
 */
import type { RedisOptions } from 'ioredis';
import { connect, describeTarget, type RedisClient } from '../queue/connection.ts';
import { queueKeys } from '../queue/keys.ts';
import { Results, type ResultRecord, type ResultSettings, type ResultUpdate } from '../queue/results.ts';
import type { EventRef, FinishedOutcome } from './policy.ts';
import type { InFlightSettings } from './in-flight.ts';

/** Where the reaper reads and records results; rejects when Redis cannot answer or refuses. */
export interface ResultsStore {
  /** The event source whose Jobs have their results here. */
  readonly source: string;
  /** For logs: where the results are. */
  readonly describe: string;
  getMany(ids: readonly string[]): Promise<(ResultRecord | undefined)[]>;
  /** Moves each record forward; which ones changed. */
  record(updates: readonly ResultUpdate[]): Promise<boolean[]>;
  close(): Promise<void>;
}

/** Bounds each round trip, so a Redis outage costs a run seconds, not its whole deadline. */
const COMMAND_TIMEOUT_MS = 5_000;

/**
 * The results of one queue, on a lazily connected client of the reaper's own, or on `shared`: the
 * in-flight check's connection to the same Redis, so a run opens one connection, not two.
 */
export class QueueResults implements ResultsStore {
  readonly source: string;
  readonly describe: string;
  private readonly client: RedisClient;
  /** Whether the client is this object's to close. */
  private readonly owned: boolean;
  private readonly results: Results;

  /** `overrides` adjust the ioredis options of a client of its own (tests: a shorter timeout). */
  constructor(queue: InFlightSettings, settings: ResultSettings, overrides: RedisOptions = {}, shared?: RedisClient) {
    this.source = queue.source;
    this.describe = `results of ${JSON.stringify(queue.queueKey)} on ${describeTarget(queue.redis)}`;
    this.owned = !shared;
    this.client = shared ?? connect(queue.redis, 'job-robot-reaper-results', false, { commandTimeout: COMMAND_TIMEOUT_MS, lazyConnect: true, ...overrides });
    // Failures surface as rejected calls; the connection's own errors only need a listener.
    if (!shared) this.client.on('error', () => undefined);
    this.results = new Results(this.client, queueKeys(queue.queueKey), settings);
  }

  getMany(ids: readonly string[]): Promise<(ResultRecord | undefined)[]> {
    return this.results.getMany(ids);
  }

  record(updates: readonly ResultUpdate[]): Promise<boolean[]> {
    return this.results.record(updates);
  }

  async close(): Promise<void> {
    if (this.owned) this.client.disconnect();
  }
}

/** The final result a finished Job stands for: its event's id and source, the Job's name, times, reason and message. */
export function resultOf(event: EventRef, outcome: FinishedOutcome): ResultUpdate {
  return {
    id: event.id,
    state: outcome.state,
    source: event.source,
    job: outcome.job,
    created: outcome.created,
    finished: outcome.finished,
    reason: outcome.reason,
    message: outcome.message,
  };
}
