/** Reading the dead-letter stream back (function/queue/dead-letter.ts writes it). */
import type { RedisClient } from '../../function/queue/connection.ts';
import type { DeadLetterRecord } from '../../function/queue/dead-letter.ts';

export interface DeadLetter extends DeadLetterRecord {
  /** The dead-letter stream's own entry id. */
  entry: string;
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
