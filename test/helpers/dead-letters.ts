/** Reading the dead-letter stream back (function/queue/dead-letter.ts writes it). */
import type { RedisClient } from '../../function/queue/connection.ts';
import type { Cut, DeadLetterRecord } from '../../function/queue/dead-letter.ts';

export interface DeadLetter extends DeadLetterRecord {
  /** The dead-letter stream's own entry id. */
  entry: string;
}

/** One dead-letter stream entry back into a record. */
export function parseDeadLetter(entry: string, fields: Buffer[]): DeadLetter {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString('utf8'), fields[i + 1]!);
  const text = (name: string) => map.get(name)?.toString('utf8') ?? '';
  const cut = (size: string, sha256: string): Cut => ({ size: Number(text(size)), sha256: text(sha256) });
  const letter: DeadLetter = {
    entry,
    id: text('id'),
    item: map.get('item') ?? Buffer.alloc(0),
    reason: text('reason'),
    status: Number(text('status')),
    attempts: Number(text('attempts')),
    time: new Date(text('time')),
    source: text('source'),
  };
  // The dead-letter sink's fields, only when present, so records without them compare as before.
  if (text('truncated') === 'true') letter.truncated = cut('size', 'sha256');
  if (map.has('headers')) letter.headers = text('headers');
  if (map.has('envelope')) letter.envelope = map.get('envelope')!;
  if (map.has('envelope_size')) letter.envelopeTruncated = cut('envelope_size', 'envelope_sha256');
  return letter;
}

/** Reads up to `count` dead letters, oldest first. */
export async function readDeadLetters(client: RedisClient, key: string, count = 10_000): Promise<DeadLetter[]> {
  const entries = (await client.xrangeBuffer(key, '-', '+', 'COUNT', count)) as [Buffer, Buffer[]][];
  return entries.map(([entry, fields]) => parseDeadLetter(entry.toString('utf8'), fields));
}
