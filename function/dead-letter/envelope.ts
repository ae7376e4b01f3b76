/**
 * One structured-mode CloudEvent (a JSON object; also each element of a batch), read for the
 * dead-letter sink. The data becomes the item as the bytes it was sent as, cut out of the JSON and
 * never re-serialized: JSON data as its own JSON text, a string of a non-JSON type as that text in
 * UTF-8, data_base64 decoded. The whole JSON is kept too, as the envelope.
 */
import { isUtf8 } from 'node:buffer';
import { isJsonMediaType } from '../http/cloudevent.ts';
import { wholeOf } from './body.ts';
import { objectMembers, type Span } from './json-spans.ts';
import type { ReadEvent } from './record.ts';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Longest attribute read, as Node bounds a binary-mode header; a longer one stays in the envelope only. */
export const MAX_ATTRIBUTE_BYTES = 16 * 1024;

const textAt = (bytes: Buffer, span: Span) => bytes.subarray(span.start, span.end);

/** The JSON string or scalar at `span`, parsed (never an object or array). */
const parsedAt = (bytes: Buffer, span: Span): unknown => JSON.parse(bytes.toString('utf8', span.start, span.end));

const isNested = (byte: number | undefined) => byte === 0x7b || byte === 0x5b;

/** `data`: its JSON text, or for a string of a non-JSON type, the string. */
function dataItem(text: Buffer, contentType: string | undefined, problems: string[]): Buffer {
  if (text[0] !== 0x22 || contentType === undefined || isJsonMediaType(contentType)) return text;
  if (isUtf8(text)) {
    const value = JSON.parse(text.toString('utf8')) as string;
    return Buffer.from(value, 'utf8');
  }
  problems.push('data is a string that is not valid UTF-8: the item is its JSON text as received');
  return text;
}

/** `data_base64`, decoded. */
function base64Item(text: Buffer, problems: string[]): Buffer {
  const value = text[0] === 0x22 ? parsedAt(text, { start: 0, end: text.length }) : undefined;
  if (typeof value === 'string' && BASE64.test(value)) return Buffer.from(value, 'base64');
  problems.push('data_base64 is not a base64 string: the item is its JSON text as received');
  return text;
}

/**
 * The event that `bytes` holds. Throws when they are not one JSON object (NotJson) or a string
 * it reads is not valid JSON (SyntaxError). A repeated name counts once, the last, as in JSON.parse.
 */
export function readEnvelope(bytes: Buffer): ReadEvent {
  const attributes = new Map<string, string>();
  let data: Span | undefined;
  let base64: Span | undefined;
  const problems: string[] = [];
  for (const { key, value } of objectMembers(bytes)) {
    const name = parsedAt(bytes, key) as string;
    if (name === 'data') data = value;
    else if (name === 'data_base64') base64 = value;
    else if (value.end - value.start > MAX_ATTRIBUTE_BYTES) problems.push(`attribute ${name.slice(0, 64)} is longer than ${MAX_ATTRIBUTE_BYTES} bytes: kept in the envelope only`);
    else if (!isNested(bytes[value.start])) {
      const parsed = parsedAt(bytes, value);
      if (parsed !== null) attributes.set(name, String(parsed));
    }
  }
  if (data && base64) problems.push('the event has both data and data_base64: the item is data');
  const item = data
    ? dataItem(textAt(bytes, data), attributes.get('datacontenttype'), problems)
    : base64
      ? base64Item(textAt(bytes, base64), problems)
      : Buffer.alloc(0);
  return { attributes, item: wholeOf(item), envelope: wholeOf(bytes), problems };
}
