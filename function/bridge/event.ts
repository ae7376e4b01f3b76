/**
 * The CloudEvent for one queue item, in HTTP binary content mode: attributes as `ce-` headers, the
 * item's bytes, untouched, as the body.
 */
import { encodeHeaderValue } from '../http/header-value.ts';
import { isUtf8 } from 'node:buffer';
import { SPEC_VERSION } from '../events.ts';

export const JSON_CONTENT_TYPE = 'application/json';
export const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';
/** Items that are not valid UTF-8 are not text; they go out as bytes. */
export const BYTES_CONTENT_TYPE = 'application/octet-stream';

/** Bytes that can open a JSON text: { [ " - 0-9 t f n. */
function opensJson(byte: number): boolean {
  return byte === 0x7b || byte === 0x5b || byte === 0x22 || byte === 0x2d || (byte >= 0x30 && byte <= 0x39) || byte === 0x74 || byte === 0x66 || byte === 0x6e;
}

/** JSON's insignificant whitespace: space, tab, LF, CR. */
function isJsonSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/**
 * `application/json` when the item is one JSON text (objects, arrays, strings, numbers, booleans,
 * null), text/plain when it is other UTF-8 (including empty), octet-stream otherwise.
 */
export function contentTypeOf(item: Buffer): string {
  if (!isUtf8(item)) return BYTES_CONTENT_TYPE;
  let first = 0;
  while (first < item.length && isJsonSpace(item[first]!)) first += 1;
  if (first === item.length || !opensJson(item[first]!)) return TEXT_CONTENT_TYPE;
  try {
    JSON.parse(item.toString('utf8'));
    return JSON_CONTENT_TYPE;
  } catch {
    return TEXT_CONTENT_TYPE;
  }
}


export interface EventAttributes {
  id: string;
  source: string;
  type: string;
  time: Date;
  /** Extension attributes (K_CE_OVERRIDES), already validated names. */
  extensions: Readonly<Record<string, string>>;
}

/** What the sender puts on the wire. */
export interface Outbound {
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * A builder for one queue's events: the attributes every event shares (source, type, extensions)
 * are encoded once; each call adds id, time and the item.
 */
export function eventBuilder(shared: Omit<EventAttributes, 'id' | 'time'>): (id: string, time: Date, item: Buffer) => Outbound {
  const source = encodeHeaderValue(shared.source);
  const type = encodeHeaderValue(shared.type);
  const extensions = Object.entries(shared.extensions).map(([name, value]) => [`ce-${name}`, encodeHeaderValue(value)] as const);
  // Items claimed together share one Date; format it once.
  let lastTime: Date | undefined;
  let lastText = '';
  return (id, time, item) => {
    if (time !== lastTime) {
      lastTime = time;
      lastText = time.toISOString();
    }
    // One object literal of fixed shape: much cheaper per event than spreading a template.
    const headers: Record<string, string> = {
      'ce-specversion': SPEC_VERSION,
      'ce-id': encodeHeaderValue(id),
      'ce-source': source,
      'ce-type': type,
      'ce-time': lastText,
      'content-type': contentTypeOf(item),
      'content-length': String(item.length),
    };
    for (const [name, value] of extensions) headers[name] = value;
    return { headers, body: item };
  };
}
