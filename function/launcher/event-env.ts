/**
 * The event's hand-off to its Job: environment variables carrying the attributes and the data,
 * bounded in size. Pure; the values are the event's exact strings (job.ts escapes them for the
 * kubelet).
 */
import type { V1EnvVar } from '@kubernetes/client-node';
import { isJsonMediaType } from '../http/cloudevent.ts';
import type { Incoming } from '../http/cloudevent.ts';
import { InvalidEvent, PayloadTooLarge } from '../http/errors.ts';

/** The variables a Job's containers receive. Template variables of the same names are replaced. */
export const EVENT_ENV = {
  id: 'CE_ID',
  source: 'CE_SOURCE',
  type: 'CE_TYPE',
  subject: 'CE_SUBJECT',
  time: 'CE_TIME',
  datacontenttype: 'CE_DATACONTENTTYPE',
  dataschema: 'CE_DATASCHEMA',
  /** The data: JSON text, UTF-8 text or base64, as CE_DATA_ENCODING says. Absent when the event has none. */
  data: 'CE_DATA',
  dataEncoding: 'CE_DATA_ENCODING',
  /** Extension attributes as one JSON object (sorted keys), when the event has any. */
  extensions: 'CE_EXTENSIONS',
} as const;

export const EVENT_ENV_NAMES: ReadonlySet<string> = new Set(Object.values(EVENT_ENV));

export type DataEncoding = 'json' | 'text' | 'base64';

const ATTRIBUTES = ['id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'dataschema'] as const;
const NOT_EXTENSIONS = new Set<string>([...ATTRIBUTES, 'specversion', 'data', 'data_base64', 'datacontentencoding', 'schemaurl']);

/** CloudEvents forbids control characters (U+0000-U+001F, U+007F-U+009F) and lone surrogates in strings. */
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f]/;

function checkString(name: string, value: string): void {
  if (FORBIDDEN.test(value) || !value.isWellFormed()) {
    throw new InvalidEvent(`attribute ${name} holds a control character or invalid Unicode`, 'invalid-attribute', { attribute: name });
  }
}

/** The data as one string, and how it is encoded. */
export function encodeData(data: unknown, datacontenttype: string | undefined): { value: string; encoding: DataEncoding } | undefined {
  if (data === undefined) return undefined;
  if (data instanceof Uint8Array) return { value: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'), encoding: 'base64' };
  if (typeof data === 'string' && datacontenttype && !isJsonMediaType(datacontenttype)) {
    if (!data.isWellFormed()) throw new InvalidEvent('event data is not valid Unicode text', 'invalid-data');
    // A NUL cannot travel in an environment variable; such text goes as its UTF-8 bytes.
    if (data.includes('\u0000')) return { value: Buffer.from(data, 'utf8').toString('base64'), encoding: 'base64' };
    return { value: data, encoding: 'text' };
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw new InvalidEvent(`event data cannot be written as JSON: ${(err as Error).message}`, 'invalid-data');
  }
  if (json === undefined) throw new InvalidEvent('event data cannot be written as JSON', 'invalid-data');
  return { value: json, encoding: 'json' };
}

/** Extension attributes of an event, sorted by name; undefined when there are none. */
export function extensionsOf(event: Incoming): Record<string, string | number | boolean> | undefined {
  const names = Object.keys(event)
    .filter((k) => !NOT_EXTENSIONS.has(k) && (event as unknown as Record<string, unknown>)[k] !== undefined)
    .sort();
  if (!names.length) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const name of names) {
    const v = (event as unknown as Record<string, unknown>)[name];
    const value = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : String(v);
    if (typeof value === 'string') checkString(name, value);
    out[name] = value;
  }
  return out;
}

/**
 * The environment variables for `event`. Throws InvalidEvent (400) for attributes CloudEvents
 * forbids and PayloadTooLarge (413) beyond `maxBytes` (UTF-8 bytes of all values).
 */
export function eventEnv(event: Incoming, maxBytes: number): V1EnvVar[] {
  const env: V1EnvVar[] = [];
  for (const name of ATTRIBUTES) {
    const value = event[name];
    if (value === undefined || value === null || value === '') continue;
    const text = String(value);
    checkString(name, text);
    env.push({ name: EVENT_ENV[name], value: text });
  }
  const extensions = extensionsOf(event);
  if (extensions) env.push({ name: EVENT_ENV.extensions, value: JSON.stringify(extensions) });
  const data = encodeData(event.data, event.datacontenttype);
  if (data) {
    env.push({ name: EVENT_ENV.data, value: data.value });
    env.push({ name: EVENT_ENV.dataEncoding, value: data.encoding });
  }
  const bytes = env.reduce((n, e) => n + Buffer.byteLength(e.value ?? '', 'utf8'), 0);
  if (bytes > maxBytes) {
    throw new PayloadTooLarge(`the event needs ${bytes} bytes as environment variables; the limit is ${maxBytes} (MAX_EVENT_BYTES)`);
  }
  return env;
}
