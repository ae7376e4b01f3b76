/**
 * What the Broker could not deliver, as a dead-letter entry in the queue's format
 * (function/queue/dead-letter.ts): the event id, the item's bytes (beyond DEAD_LETTER_MAX_ITEM_BYTES
 * only its first bytes, with its size and SHA-256), and a reason built from the extensions Knative
 * adds to dead-lettered events (knativeerrorcode, knativeerrordata, knativeerrordest) and from
 * whatever kept the sink from reading the event.
 */
import type { Cut, DeadLetterRecord } from '../queue/dead-letter.ts';
import type { Whole } from './body.ts';

/** Longest part of the subscriber's answer kept in the reason. */
export const MAX_ERROR_TEXT = 1024;

/** One event as the sink read it from a request. */
export interface ReadEvent {
  /** Context attributes as text, by name: id, source, type, knativeerrorcode, ... */
  attributes: ReadonlyMap<string, string>;
  /** The event's data; the whole request body when the request could not be read as an event. */
  item: Whole;
  /** Structured and batch mode: the event's JSON as received. */
  envelope?: Whole;
  /** What the sink could not read, in words. */
  problems: readonly string[];
}

/** Knative puts the subscriber's answer, base64, in knativeerrordata. */
function errorText(attributes: ReadonlyMap<string, string>): string {
  const raw = attributes.get('knativeerrordata');
  if (!raw) return '';
  const text = Buffer.from(raw, 'base64').toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}…` : text;
}

/** `bytes` whole when they fit in `limit`, else their first `limit` bytes and what they were whole. */
function kept(whole: Whole, limit: number): { bytes: Buffer; cut?: Cut } {
  if (whole.size <= limit && whole.bytes.length === whole.size) return { bytes: whole.bytes };
  return { bytes: whole.bytes.subarray(0, limit), cut: { size: whole.size, sha256: whole.sha256() } };
}

const cutNote = (what: string, cut: Cut, keptBytes: number) =>
  `${what} is ${cut.size} bytes, more than DEAD_LETTER_MAX_ITEM_BYTES: its first ${keptBytes} bytes are kept, with its size and SHA-256`;

/** The record for `event`; `headers` is the request's CloudEvents headers as JSON. */
export function recordOf(event: ReadEvent, headers: string, maxItemBytes: number, now: Date): DeadLetterRecord {
  const { attributes } = event;
  const item = kept(event.item, maxItemBytes);
  const envelope = event.envelope && kept(event.envelope, maxItemBytes);
  const missing = ['id', 'source'].filter((name) => !attributes.get(name));
  const problems = [
    ...event.problems,
    ...(missing.length ? [`the event has no ${missing.join(' and ')}`] : []),
    ...(item.cut ? [cutNote('the item', item.cut, item.bytes.length)] : []),
    ...(envelope?.cut ? [cutNote("the event's JSON", envelope.cut, envelope.bytes.length)] : []),
  ];
  const code = Number(attributes.get('knativeerrorcode') ?? 0);
  const status = Number.isInteger(code) && code >= 0 ? code : 0;
  const dest = attributes.get('knativeerrordest') ?? 'the subscriber';
  const answer = errorText(attributes);
  const given = `the Broker gave up delivering to ${dest}${status ? `: HTTP ${status}` : ''}${answer ? `: ${answer}` : ''}`;
  return {
    id: attributes.get('id') ?? '',
    item: item.bytes,
    reason: [given, ...problems].join('; '),
    status,
    attempts: 0,
    time: now,
    source: attributes.get('source') ?? '',
    headers,
    ...(item.cut ? { truncated: item.cut } : {}),
    ...(envelope ? { envelope: envelope.bytes } : {}),
    ...(envelope?.cut ? { envelopeTruncated: envelope.cut } : {}),
  };
}
