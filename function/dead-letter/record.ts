/**
 * What the Broker could not deliver, as a dead-letter entry in the queue's format
 * (function/queue/dead-letter.ts): the event id, the item's bytes, and a reason built from the
 * extensions Knative adds to dead-lettered events (knativeerrorcode, knativeerrordata, knativeerrordest).
 */
import type { Incoming } from '../http/cloudevent.ts';
import type { DeadLetterNote } from '../queue/dead-letter.ts';

/** Longest part of the subscriber's answer kept in the reason. */
export const MAX_ERROR_TEXT = 1024;

/** The item's bytes as the bridge sent them: bytes stay bytes, text stays text, JSON is re-serialized. */
export function itemBytes(event: Incoming): Buffer {
  const data = event.data;
  if (data === undefined || data === null) return Buffer.alloc(0);
  if (data instanceof Uint8Array) return Buffer.from(data);
  if (typeof data === 'string' && !/json/.test(event.datacontenttype ?? 'application/json')) return Buffer.from(data, 'utf8');
  return Buffer.from(JSON.stringify(data), 'utf8');
}

/** Knative puts the subscriber's answer, base64, in knativeerrordata. */
function errorText(event: Incoming): string {
  const raw = event['knativeerrordata'];
  if (typeof raw !== 'string' || !raw) return '';
  const text = Buffer.from(raw, 'base64').toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}…` : text;
}

export function noteFor(event: Incoming, now: Date): DeadLetterNote {
  const code = Number(event['knativeerrorcode'] ?? 0);
  const dest = typeof event['knativeerrordest'] === 'string' ? event['knativeerrordest'] : 'the subscriber';
  const answer = errorText(event);
  const status = Number.isInteger(code) && code >= 0 ? code : 0;
  const reason = `the Broker gave up delivering to ${dest}${status ? `: HTTP ${status}` : ''}${answer ? `: ${answer}` : ''}`;
  return { reason, status, attempts: 0, time: now, source: event.source };
}
