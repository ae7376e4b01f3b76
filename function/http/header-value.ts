/**
 * Encoding of CloudEvents attribute values in HTTP headers, for senders. It has no dependencies,
 * so the bridge loads nothing else for it; http/cloudevent.ts re-exports it beside the decoder.
 */

/** Values with nothing to encode (printable ASCII but `"` and `%`). */
const PLAIN_HEADER_VALUE = /^[\x21\x23\x24\x26-\x7e]*$/;

/**
 * A header value per the CloudEvents HTTP binding: space, `"`, `%` and anything outside printable
 * ASCII are percent-encoded (as UTF-8).
 */
export function encodeHeaderValue(value: string): string {
  if (PLAIN_HEADER_VALUE.test(value)) return value;
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (code > 0x20 && code < 0x7f && ch !== '"' && ch !== '%') out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
