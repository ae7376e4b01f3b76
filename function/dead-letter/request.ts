/**
 * Every event in a request to the dead-letter sink, read without ever failing on content. Binary
 * mode: the attributes come from the ce-* headers and the item is the body, untouched. Structured
 * and batch mode: ./envelope.ts reads each event. A request that cannot be read as events (JSON that
 * does not parse, an unsupported CloudEvents format, a structured or batch body beyond
 * MAX_REQUEST_BYTES) is one event whose item is the whole body, with the reason.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { decodeHeaderValue, mediaType } from '../http/cloudevent.ts';
import { isCut, wholeOf, type Whole } from './body.ts';
import { readEnvelope } from './envelope.ts';
import { arrayElements, NotJson } from './json-spans.ts';
import type { ReadEvent } from './record.ts';

const STRUCTURED = 'application/cloudevents+json';
const BATCH = 'application/cloudevents-batch+json';

/** A batch of more events than this is kept whole, as one record. */
export const MAX_BATCH_EVENTS = 100;

/** The request headers a record keeps: what a replay needs to rebuild the event. */
export function keptHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !(name.startsWith('ce-') || name === 'content-type' || name === 'content-encoding')) continue;
    kept[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return kept;
}

/**
 * Whether a request can be from a Broker: it has a ce- header or a CloudEvents content type.
 * Anything else is answered 415; everything that can be is recorded.
 */
export function mayBeCloudEvent(headers: Readonly<Record<string, string>>): boolean {
  return mediaType(headers['content-type']).startsWith('application/cloudevents') || Object.keys(headers).some((name) => name.startsWith('ce-'));
}

/** The ce-* headers as attributes, decoded per the HTTP binding; one that does not decode is kept as sent. */
function headerAttributes(headers: Readonly<Record<string, string>>, problems: string[]): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const [name, raw] of Object.entries(headers)) {
    if (!name.startsWith('ce-')) continue;
    try {
      attributes.set(name.slice(3), decodeHeaderValue(raw, name));
    } catch {
      attributes.set(name.slice(3), raw);
      problems.push(`${name} is not valid percent-encoded UTF-8: kept as sent`);
    }
  }
  return attributes;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

function binaryEvent(headers: Readonly<Record<string, string>>, body: Whole): ReadEvent {
  const problems: string[] = [];
  return { attributes: headerAttributes(headers, problems), item: body, problems };
}

function wholeRequest(headers: Readonly<Record<string, string>>, body: Whole, why: string): ReadEvent {
  const problems: string[] = [];
  const attributes = headerAttributes(headers, problems);
  return { attributes, item: body, problems: [`the request could not be read as a CloudEvent (${why}): the item is the whole request body`, ...problems] };
}

function batchEvents(bytes: Buffer): ReadEvent[] {
  const elements = arrayElements(bytes);
  if (elements.length === 0) throw new NotJson('the batch is empty');
  if (elements.length > MAX_BATCH_EVENTS) throw new NotJson(`the batch holds ${elements.length} events, more than ${MAX_BATCH_EVENTS}`);
  return elements.map((span, index) => {
    const element = bytes.subarray(span.start, span.end);
    try {
      return readEnvelope(element);
    } catch (err) {
      const why = `batch element ${index} could not be read as a CloudEvent (${message(err)}): the item is the element as received`;
      return { attributes: new Map(), item: wholeOf(element), problems: [why] };
    }
  });
}

/** The events in a request whose headers are `headers` (see keptHeaders) and whose body is `body`. */
export function eventsIn(headers: Readonly<Record<string, string>>, body: Whole): ReadEvent[] {
  const type = mediaType(headers['content-type']);
  if (!type.startsWith('application/cloudevents')) return [binaryEvent(headers, body)];
  if (type !== STRUCTURED && type !== BATCH) return [wholeRequest(headers, body, `unsupported CloudEvents format ${type}`)];
  if (isCut(body)) return [wholeRequest(headers, body, `it is ${body.size} bytes, more than MAX_REQUEST_BYTES`)];
  try {
    return type === BATCH ? batchEvents(body.bytes) : [readEnvelope(body.bytes)];
  } catch (err) {
    // Content never fails the request: whatever could not be read is kept whole, with the reason.
    return [wholeRequest(headers, body, message(err))];
  }
}
