/**
 * Dead letters: items the sink refused (4xx other than 408/429) or that used up MAX_ATTEMPTS, and
 * stream entries that cannot be sent. Each is one entry of the queue's dead-letter stream:
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
 * The bridge only appends to this stream; people read, replay and trim it.
 */
import type { RedisClient } from './connection.ts';

export interface DeadLetterNote {
  reason: string;
  status: number;
  attempts: number;
  time: Date;
  source: string;
}

export interface DeadLetter extends DeadLetterNote {
  id: string;
  item: Buffer;
  /** The dead-letter stream's own entry id. */
  entry: string;
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

/** One dead-letter stream entry back into a record. */
export function parseDeadLetter(entry: string, fields: Buffer[]): DeadLetter {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString('utf8'), fields[i + 1]!);
  const text = (name: string) => map.get(name)?.toString('utf8') ?? '';
  return {
    entry,
    id: text('id'),
    item: map.get('item') ?? Buffer.alloc(0),
    reason: text('reason'),
    status: Number(text('status')),
    attempts: Number(text('attempts')),
    time: new Date(text('time')),
    source: text('source'),
  };
}

/** Reads up to `count` dead letters, oldest first. */
export async function readDeadLetters(client: RedisClient, key: string, count = 10_000): Promise<DeadLetter[]> {
  const entries = (await client.xrangeBuffer(key, '-', '+', 'COUNT', count)) as [Buffer, Buffer[]][];
  return entries.map(([entry, fields]) => parseDeadLetter(entry.toString('utf8'), fields));
}
