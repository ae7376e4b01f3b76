/**
 * Dead letters: items the sink refused (4xx other than 408/429) or that used up MAX_ATTEMPTS, stream
 * entries that cannot be sent, and events the Broker gave up on. Each is one entry of the queue's
 * dead-letter stream:
 *
 * | field      | value                                                    |
 * |------------|----------------------------------------------------------|
 * | `id`       | the CloudEvent id the item had                           |
 * | `item`     | the item's original bytes                                |
 * | `reason`   | why, in words (includes the sink's answer when it gave one) |
 * | `status`   | the last HTTP status, `0` when no answer came            |
 * | `attempts` | delivery attempts counted against MAX_ATTEMPTS           |
 * | `time`     | when it was dead-lettered, ISO 8601                      |
 * | `source`   | the CloudEvent source, so a replay keeps the identity    |
 *
 * The dead-letter sink adds, when they apply:
 *
 * | field             | value                                                             |
 * |-------------------|-------------------------------------------------------------------|
 * | `truncated`       | `true` when `item` holds only the item's first bytes              |
 * | `size`, `sha256`  | with `truncated`: the whole item's size in bytes and hex SHA-256   |
 * | `headers`         | the request's `ce-*`, `content-type` and `content-encoding` headers as received, a JSON object |
 * | `envelope`        | structured and batch mode: the event's JSON as received           |
 * | `envelope_size`, `envelope_sha256` | when `envelope` holds only its first bytes: its whole size and hex SHA-256 |
 *
 * Every dead letter also ends its item's result (`dead-lettered`, with the reason; see results.ts).
 * Two writers, one record: the sources' scripts (DEAD, XDEAD in scripts.ts) move a claimed item
 * here with `id` and `item` first and then `noteFields`; `appendDeadLetters` writes the same record
 * for what the Broker gave up on (the dead-letter sink). job-robot only appends to this stream;
 * people read, replay and trim it.
 */
import type { RedisClient } from './connection.ts';
import type { QueueKeys } from './keys.ts';
import { resultArgs, type ResultSettings } from './results.ts';
import { defineScripts } from './scripts.ts';

export interface DeadLetterNote {
  reason: string;
  status: number;
  attempts: number;
  time: Date;
  source: string;
}

/** Bytes kept only in part: how large they were whole, and their hex SHA-256. */
export interface Cut {
  size: number;
  sha256: string;
}

/** One dead letter as it is written: the item, the id it had, and why. */
export interface DeadLetterRecord extends DeadLetterNote {
  id: string;
  item: Buffer;
  /** Set when `item` is only the item's first bytes. */
  truncated?: Cut;
  /** The request's CloudEvents headers as received, JSON (the dead-letter sink). */
  headers?: string;
  /** The event's JSON as received, in structured and batch mode (the dead-letter sink). */
  envelope?: Buffer;
  /** Set when `envelope` is only the first bytes of the event's JSON. */
  envelopeTruncated?: Cut;
  /**
   * False when the letter is not a queue item's (another event the Broker gave up on, such as the
   * results function's Job events): then it ends no item's result. Default true.
   */
  endsItem?: boolean;
}

/** Everything but `id` and `item` (the scripts add those from Redis) as field, value, ... */
export function noteFields(note: DeadLetterNote): string[] {
  return [
    'reason',
    note.reason,
    'status',
    String(note.status),
    'attempts',
    String(note.attempts),
    'time',
    note.time.toISOString(),
    'source',
    note.source,
  ];
}

/** The optional fields of a record that has them, as field, value, ... */
function sinkFields(letter: DeadLetterRecord): (string | Buffer)[] {
  const fields: (string | Buffer)[] = [];
  if (letter.truncated) fields.push('truncated', 'true', 'size', String(letter.truncated.size), 'sha256', letter.truncated.sha256);
  if (letter.headers !== undefined) fields.push('headers', letter.headers);
  if (letter.envelope) fields.push('envelope', letter.envelope);
  if (letter.envelopeTruncated) fields.push('envelope_size', String(letter.envelopeTruncated.size), 'envelope_sha256', letter.envelopeTruncated.sha256);
  return fields;
}

/**
 * Appends `letters` to the queue's dead-letter stream in one round trip, each with its result
 * (`dead-lettered`, function/queue/results.ts) in the same step. Resolves with Redis's first
 * refusal, or undefined once every one is written.
 */
export async function appendDeadLetters(client: RedisClient, keys: QueueKeys, settings: ResultSettings, letters: readonly DeadLetterRecord[]): Promise<Error | undefined> {
  const scripts = defineScripts(client);
  const pipeline = client.pipeline();
  for (const letter of letters) {
    const fields = ['id', letter.id, 'item', letter.item, ...noteFields(letter), ...sinkFields(letter)];
    if (letter.endsItem === false) pipeline.xadd(keys.deadLetter, '*', ...fields);
    else scripts.letterIn(pipeline, keys.deadLetter, ...resultArgs(keys, settings), ...fields);
  }
  const results = (await pipeline.exec()) ?? [];
  return results.find(([err]) => err)?.[0] ?? undefined;
}
