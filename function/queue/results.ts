/**
 * Results: what became of each item, in Redis beside its queue, so the producer that pushed it can
 * find out without asking Kubernetes.
 *
 * One hash per item, `<family>:result:<event id>` (see keys.ts), moves forward through these states
 * and never back:
 *
 * | state           | written by                                         | rank  |
 * |-----------------|----------------------------------------------------|-------|
 * | `accepted`      | the bridge, for an item with a producer id (ID_FIELD), before it is sent | 0 |
 * | `created`       | the results function, when the item's Job appears  | 1     |
 * | `succeeded`     | the results function or the reaper, from the Job's conditions | final |
 * | `failed`        | the same, with the condition's reason and message  | final |
 * | `dead-lettered` | whoever dead-letters the item, with the reason     | final |
 *
 * The first final state wins: a later one (a Job that still ran after the Broker gave up on the
 * event) leaves the record as it is. Every write that reaches a final state also appends one entry
 * to the `results` stream (capped near RESULTS_MAX_LEN entries), so a producer can wait with
 * `XREAD BLOCK` instead of polling. A record lives RESULT_RETENTION_SECONDS after its last change;
 * producer ids are recognised as duplicates for exactly that long.
 *
 * | field      | value                                                       |
 * |------------|-------------------------------------------------------------|
 * | `id`       | the event id                                                |
 * | `state`    | one of the states above                                     |
 * | `source`   | the event source                                            |
 * | `job`      | the Job's name (from `created` on)                          |
 * | `accepted`, `created`, `finished` | when each happened, ISO 8601          |
 * | `reason`, `message` | why it ended so: the Job condition's reason and message, or the dead-letter reason |
 * | `claim`    | list mode with producer ids: the bridge's claim that holds the id |
 *
 * The writes are Lua (RESULT in scripts.ts), so the rank check and the write are one step. The
 * scripts build the record's key from the queue family's prefix, which always hashes to the
 * queue's slot, so they also run unchanged on Redis Cluster.
 */
import type { RedisClient } from './connection.ts';
import type { QueueKeys } from './keys.ts';
import { defineScripts, type Scripts } from './scripts.ts';

export const RESULT_STATES = ['accepted', 'created', 'succeeded', 'failed', 'dead-lettered'] as const;
export type ResultState = (typeof RESULT_STATES)[number];
export type FinalState = 'succeeded' | 'failed' | 'dead-lettered';

export function isFinal(state: ResultState): state is FinalState {
  return state === 'succeeded' || state === 'failed' || state === 'dead-lettered';
}

/** How long records live and how long the results stream grows. */
export interface ResultSettings {
  retentionSeconds: number;
  streamMaxLen: number;
}

export const DEFAULT_RESULT_SETTINGS: ResultSettings = { retentionSeconds: 86_400, streamMaxLen: 100_000 };

/** Longest reason and message kept: Kubernetes condition messages are free text. */
export const MAX_REASON_CHARS = 256;
export const MAX_MESSAGE_CHARS = 1024;

/** A change of state, as a writer reports it. */
export interface ResultUpdate {
  id: string;
  state: Exclude<ResultState, 'accepted'>;
  source?: string | undefined;
  job?: string | undefined;
  created?: Date | undefined;
  finished?: Date | undefined;
  reason?: string | undefined;
  message?: string | undefined;
}

/** A record as read back. */
export interface ResultRecord {
  id: string;
  state: ResultState;
  source?: string;
  job?: string;
  accepted?: string;
  created?: string;
  finished?: string;
  reason?: string;
  message?: string;
}

/** Where a script writes results: the record prefix, the stream, retention and cap, as ARGV. */
export function resultArgs(keys: QueueKeys, settings: ResultSettings): [prefix: string, stream: string, retention: number, maxLen: number] {
  return [keys.resultPrefix, keys.results, settings.retentionSeconds, settings.streamMaxLen];
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** An update's fields other than id and state, as field, value, ... (empty ones left out). */
export function updateFields(update: Omit<ResultUpdate, 'id' | 'state'>): string[] {
  const out: string[] = [];
  if (update.source) out.push('source', update.source);
  if (update.job) out.push('job', update.job);
  if (update.created) out.push('created', update.created.toISOString());
  if (update.finished) out.push('finished', update.finished.toISOString());
  if (update.reason) out.push('reason', cut(update.reason, MAX_REASON_CHARS));
  if (update.message) out.push('message', cut(update.message, MAX_MESSAGE_CHARS));
  return out;
}

const TEXT_FIELDS = ['source', 'job', 'accepted', 'created', 'finished', 'reason', 'message'] as const;

/** A record from HGETALL, or undefined when there is none (or it is not one). */
export function parseResult(hash: Record<string, string>): ResultRecord | undefined {
  const state = hash.state as ResultState | undefined;
  if (!hash.id || !state || !RESULT_STATES.includes(state)) return undefined;
  const record: ResultRecord = { id: hash.id, state };
  for (const field of TEXT_FIELDS) if (hash[field] !== undefined) record[field] = hash[field];
  return record;
}

/** Reading and writing one queue's results. */
export class Results {
  private readonly scripts: Scripts;
  private readonly client: RedisClient;
  private readonly keys: QueueKeys;
  private readonly settings: ResultSettings;

  constructor(client: RedisClient, keys: QueueKeys, settings: ResultSettings = DEFAULT_RESULT_SETTINGS) {
    this.client = client;
    this.keys = keys;
    this.settings = settings;
    this.scripts = defineScripts(client);
  }

  /** Moves each record forward (see the table above), in one round trip; resolves with which ones changed. */
  async record(updates: readonly ResultUpdate[]): Promise<boolean[]> {
    if (!updates.length) return [];
    const pipeline = this.client.pipeline();
    for (const u of updates) {
      this.scripts.recordIn(pipeline, this.keys.result(u.id), ...resultArgs(this.keys, this.settings), u.id, u.state, ...updateFields(u));
    }
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, changed]) => {
      if (err) throw err;
      return Number(changed) === 1;
    });
  }

  /** One update, one script call: whether it changed the record. */
  async recordOne(u: ResultUpdate): Promise<boolean> {
    const changed = await this.scripts.record(this.keys.result(u.id), ...resultArgs(this.keys, this.settings), u.id, u.state, ...updateFields(u));
    return Number(changed) === 1;
  }

  async get(id: string): Promise<ResultRecord | undefined> {
    return parseResult(await this.client.hgetall(this.keys.result(id)));
  }

  /** Records of many ids in one round trip, in order (undefined where none). */
  async getMany(ids: readonly string[]): Promise<(ResultRecord | undefined)[]> {
    if (!ids.length) return [];
    const pipeline = this.client.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.result(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, hash]) => {
      if (err) throw err;
      return parseResult(hash as Record<string, string>);
    });
  }
}
