/**
 * Reading CloudEvents from an HTTP request, in binary, structured and batch mode. The body arrives
 * raw (express.json() does not read application/cloudevents+json), is decoded here, and every
 * event passes the SDK's validate(). Failures throw the typed errors of ./errors.ts.
 */
import express, { type RequestHandler } from 'express';
import { CloudEvent, HTTP, ValidationError } from 'cloudevents';
import { InvalidEvent, PayloadTooLarge, UnsupportedMediaType } from './errors.ts';
export { encodeHeaderValue } from './header-value.ts';

export type Incoming = CloudEvent<unknown>;

const STRUCTURED = 'application/cloudevents+json';
const BATCH = 'application/cloudevents-batch+json';

/** Raw body reader for every content type, bounded by `limitBytes` (beyond it: 413). */
export function rawBody(limitBytes: number): RequestHandler {
  return express.raw({ type: () => true, limit: limitBytes });
}

/** The media type without parameters, lowercased: `application/json; charset=utf-8` → `application/json`. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Whether a media type carries JSON: application/json or any +json suffix. */
export function isJsonMediaType(type: string): boolean {
  const t = mediaType(type);
  return t === 'application/json' || t.endsWith('+json') || t === 'text/json';
}

/** Whether a media type is text that should be decoded as UTF-8. */
export function isTextMediaType(type: string): boolean {
  const t = mediaType(type);
  return t.startsWith('text/') || t === 'application/xml' || t.endsWith('+xml');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** For text data: keeps a leading byte-order mark, which is part of the text the producer sent. */
const utf8Text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(body: Buffer, what: string, decoder = utf8): string {
  try {
    return decoder.decode(body);
  } catch {
    throw new InvalidEvent(`${what} is not valid UTF-8`, 'invalid-encoding');
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidEvent(`${what} is not valid JSON: ${(err as Error).message}`, 'invalid-json');
  }
}

/** Decodes binary-mode data by its content type: JSON parsed, text as string, anything else as bytes. */
export function decodeData(body: Buffer, contentType: string | undefined): unknown {
  if (body.length === 0) return undefined;
  if (!contentType || isJsonMediaType(contentType)) return parseJson(decodeUtf8(body, 'event data'), 'event data');
  if (isTextMediaType(contentType)) return decodeUtf8(body, 'event data', utf8Text);
  return Buffer.from(body);
}

function validated(event: CloudEvent<unknown>): Incoming {
  try {
    event.validate();
  } catch (err) {
    throw invalid(err);
  }
  return event;
}

function invalid(err: unknown): InvalidEvent {
  if (err instanceof InvalidEvent) return err;
  if (err instanceof ValidationError) {
    const errors = (err.errors ?? []).map((e) => (typeof e === 'string' ? e : JSON.stringify(e)));
    return new InvalidEvent(`invalid CloudEvent: ${[err.message, ...errors].join('; ')}`, 'invalid-event');
  }
  return new InvalidEvent(`invalid CloudEvent: ${(err as Error).message ?? String(err)}`, 'invalid-event');
}

const REQUIRED = ['id', 'source', 'type'] as const;

/** The SDK invents an id when one is missing; a received event must bring its own. */
function requireAttributes(get: (name: string) => unknown, where: (name: string) => string): void {
  const missing = REQUIRED.filter((name) => {
    const v = get(name);
    return typeof v !== 'string' || v.length === 0;
  });
  if (missing.length) {
    throw new InvalidEvent(`invalid CloudEvent: missing required attribute ${missing.map(where).join(', ')}`, 'missing-attribute', {
      missing: [...missing],
    });
  }
}

function requireSpec1(specversion: unknown): void {
  if (specversion !== '1.0') {
    throw new InvalidEvent(`unsupported specversion ${JSON.stringify(specversion ?? null)}: only 1.0 is accepted`, 'invalid-specversion');
  }
}

const INT32 = (n: number) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647;

/**
 * Attribute values of the JSON format: strings, booleans or 32-bit integers (null means absent).
 * An object, array or fraction can never be an attribute, extensions included.
 */
function attributeValues(given: Record<string, unknown>): Record<string, string | boolean | number> {
  const out: Record<string, string | boolean | number> = {};
  for (const [name, value] of Object.entries(given)) {
    if (value === null) continue;
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && INT32(value))) out[name] = value;
    else throw new InvalidEvent(`attribute ${name} must be a string, a boolean or an integer`, 'invalid-attribute', { attribute: name });
  }
  return out;
}

/** One structured-mode event object (also each element of a batch). */
export function fromStructured(obj: unknown): Incoming {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new InvalidEvent('a structured CloudEvent must be a JSON object', 'invalid-event');
  }
  const { data_base64, data, ...given } = obj as Record<string, unknown>;
  const attrs = attributeValues(given);
  requireSpec1(attrs['specversion']);
  requireAttributes((name) => attrs[name], (name) => name);
  let payload: unknown = data;
  if (data_base64 !== undefined) {
    if (data !== undefined) throw new InvalidEvent('a CloudEvent may not carry both data and data_base64', 'invalid-event');
    if (typeof data_base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data_base64)) {
      throw new InvalidEvent('data_base64 is not base64', 'invalid-event');
    }
    payload = Buffer.from(data_base64, 'base64');
  }
  try {
    return validated(new CloudEvent<unknown>({ ...attrs, ...(payload !== undefined ? { data: payload } : {}) } as never, false));
  } catch (err) {
    throw invalid(err);
  }
}

export interface ReadOptions {
  /** The most events a batch may hold (MAX_BATCH_EVENTS); beyond it, 413 before any event is validated. */
  maxBatchEvents?: number;
}

/**
 * Every CloudEvent in the request: one for binary and structured mode, one per element for batch
 * mode. Expects `req.body` to be the raw Buffer from `rawBody()`. A batch is parsed as JSON once
 * and counted before its events are validated one by one (the costly part).
 */
export function eventsFromRequest(headers: Record<string, string | string[] | undefined>, body: unknown, options: ReadOptions = {}): Incoming[] {
  const raw = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
  const contentType = typeof headers['content-type'] === 'string' ? headers['content-type'] : undefined;
  const type = mediaType(contentType);

  if (type === BATCH) {
    const list = parseJson(decodeUtf8(raw, 'batch'), 'batch');
    if (!Array.isArray(list)) throw new InvalidEvent('a CloudEvents batch must be a JSON array', 'invalid-event');
    if (list.length === 0) throw new InvalidEvent('the CloudEvents batch is empty', 'invalid-event');
    const max = options.maxBatchEvents ?? Infinity;
    if (list.length > max) throw new PayloadTooLarge(`the batch holds ${list.length} events; the limit is ${max} (MAX_BATCH_EVENTS)`);
    return list.map((item) => fromStructured(item));
  }
  if (type === STRUCTURED) {
    return [fromStructured(parseJson(decodeUtf8(raw, 'structured event'), 'structured event'))];
  }
  if (type.startsWith('application/cloudevents')) {
    throw new UnsupportedMediaType(`unsupported CloudEvents format ${type}: use ${STRUCTURED}, ${BATCH} or binary mode`);
  }
  if (headers['ce-specversion'] === undefined && headers['ce-id'] === undefined) {
    throw new UnsupportedMediaType(
      `not a CloudEvent: expected binary mode (ce-* headers) or ${STRUCTURED}, got content-type ${type || '(none)'}`,
    );
  }
  const decoded = decodeCeHeaders(stringHeaders(headers));
  requireSpec1(decoded['ce-specversion']);
  requireAttributes((name) => decoded[`ce-${name}`], (name) => `ce-${name}`);
  let event: CloudEvent<unknown>;
  try {
    const parsed = HTTP.toEvent({ headers: decoded, body: undefined });
    event = (Array.isArray(parsed) ? parsed[0] : parsed) as CloudEvent<unknown>;
  } catch (err) {
    throw invalid(err);
  }
  const data = decodeData(raw, contentType);
  // The SDK rewrites ce-time into UTC; the event keeps the time string it was sent with.
  const time = decoded['ce-time'];
  const overrides = { ...(data !== undefined ? { data } : {}), ...(time !== undefined ? { time } : {}) };
  const complete = Object.keys(overrides).length ? event.cloneWith(overrides, false) : event;
  return [validated(complete)];
}

/**
 * A `ce-` header value as the CloudEvents HTTP binding (1.0.2, 3.1.3.2) decodes it: a quoted-string
 * is unquoted, then one round of percent-decoding (UTF-8) is applied; an invalid escape or invalid
 * UTF-8 is rejected. Raw UTF-8 bytes (which Node hands over as latin1 characters) are read as UTF-8.
 */
export function decodeHeaderValue(raw: string, name = 'header'): string {
  let value = raw;
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
  // Node reads header bytes as latin1; characters beyond it mean the caller already has text.
  if (/[\u0080-\u00ff]/.test(value) && !/[^\u0000-\u00ff]/.test(value)) value = decodeUtf8(Buffer.from(value, 'latin1'), name);
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new InvalidEvent(`${name} is not valid percent-encoded UTF-8`, 'invalid-attribute', { attribute: name });
  }
}

function decodeCeHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = k.startsWith('ce-') ? decodeHeaderValue(v, k) : v;
  return out;
}

function stringHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}
