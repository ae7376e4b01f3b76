/**
 * Producer ids (list mode, ID_FIELD): a JSON item's own string field names its event, so the
 * producer can find its Job and its result, and pushing the same work twice runs it once.
 *
 * The id travels as the CloudEvent id (a `ce-id` header), into a Job annotation and into a Redis
 * key, so it is kept to what all three carry unchanged: 1 to 256 visible ASCII characters, no
 * spaces. An item that is not a JSON object, or has no such field, gets a UUIDv7 as before; a field
 * that is there but not such a string is the item's fault, and it is dead-lettered with the reason.
 */
export const MAX_PRODUCER_ID_CHARS = 256;

const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

export type ProducerId = { id: string } | { problem: string } | undefined;

/** Whether `text` can be an event id as it is. */
export function idProblem(text: string): string | undefined {
  if (text.length === 0) return 'is empty';
  if (text.length > MAX_PRODUCER_ID_CHARS) return `is ${text.length} characters, over ${MAX_PRODUCER_ID_CHARS}`;
  if (!VISIBLE_ASCII.test(text)) return 'must be visible ASCII characters (no spaces or control characters)';
  return undefined;
}

/** The producer's id in `item`'s field `field`: the id, why it cannot be one, or undefined (none given). */
export function producerId(item: Buffer, field: string): ProducerId {
  let parsed: unknown;
  try {
    parsed = JSON.parse(item.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  if (!Object.hasOwn(parsed, field)) return undefined;
  const value = (parsed as Record<string, unknown>)[field];
  if (typeof value !== 'string') return { problem: `invalid-id: the item's "${field}" must be a string, not ${value === null ? 'null' : typeof value}` };
  const problem = idProblem(value);
  return problem ? { problem: `invalid-id: the item's "${field}" ${problem}` } : { id: value };
}
