/**
 * Where the members of a JSON object, or the elements of a JSON array, lie in its bytes, found
 * without parsing the values: the dead-letter sink keeps an event's data exactly as it arrived (big
 * integers, duplicate keys and whitespace included) and must not recurse into data nested
 * thousands of levels deep. The outer object or array is read strictly; a nested value is only
 * checked for balanced brackets and closed strings, since it is kept as bytes, not read.
 */

/** Bytes `start` (inclusive) to `end` (exclusive). */
export interface Span {
  start: number;
  end: number;
}

export interface Member {
  /** The name's JSON string, quotes included. */
  key: Span;
  value: Span;
}

/** The bytes are not the JSON structure asked for. */
export class NotJson extends Error {
  override name = 'NotJson';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

const isSpace = (b: number | undefined) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

function skipSpace(bytes: Buffer, at: number): number {
  let i = at;
  while (isSpace(bytes[i])) i += 1;
  return i;
}

function expected(what: string, bytes: Buffer, at: number): NotJson {
  return new NotJson(at >= bytes.length ? `expected ${what}, found the end` : `expected ${what} at byte ${at}`);
}

/** Just past the closing quote of the string that opens at `at`. */
function stringEnd(bytes: Buffer, at: number): number {
  for (let i = at + 1; i < bytes.length; i += 1) {
    const b = bytes[i]!;
    if (b === QUOTE) return i + 1;
    if (b === BACKSLASH) i += 1;
    else if (b < 0x20) throw new NotJson(`control character in a string at byte ${i}`);
  }
  throw new NotJson(`unterminated string from byte ${at}`);
}

/** Bytes a number or a literal can hold (checked against SCALAR once the run ends). */
const isScalarByte = (b: number) => b === 0x2b || b === 0x2d || b === 0x2e || (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
const SCALAR = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)$/;

/** Just past the scalar (number, true, false, null) that starts at `at`. */
function scalarEnd(bytes: Buffer, at: number): number {
  let i = at;
  while (i < bytes.length && isScalarByte(bytes[i]!)) i += 1;
  if (!SCALAR.test(bytes.toString('latin1', at, i))) throw expected('a JSON value', bytes, at);
  return i;
}

/** Just past the value that starts at `at`, at any depth, with an explicit stack (no recursion). */
function valueEnd(bytes: Buffer, at: number): number {
  const first = bytes[at];
  if (first === QUOTE) return stringEnd(bytes, at);
  if (first !== OPEN_OBJECT && first !== OPEN_ARRAY) return scalarEnd(bytes, at);
  let closers: Uint8Array = new Uint8Array(64);
  let depth = 0;
  let i = at;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b === QUOTE) {
      i = stringEnd(bytes, i);
      continue;
    }
    if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (depth === closers.length) closers = growTo(closers, depth * 2);
      closers[depth] = b === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY;
      depth += 1;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
      if (closers[depth - 1] !== b) throw expected(String.fromCharCode(closers[depth - 1]!), bytes, i);
      depth -= 1;
      if (depth === 0) return i + 1;
    }
    i += 1;
  }
  throw new NotJson(`unclosed ${first === OPEN_OBJECT ? 'object' : 'array'} from byte ${at}`);
}

function growTo(stack: Uint8Array, size: number): Uint8Array {
  const grown = new Uint8Array(size);
  grown.set(stack);
  return grown;
}

/**
 * The entries of the object or array that is the whole of `bytes` (whitespace around it allowed):
 * `entry` reads one entry at its first byte and returns where it ends.
 */
function entries(bytes: Buffer, open: number, close: number, what: string, entry: (at: number) => number): void {
  let i = skipSpace(bytes, 0);
  if (bytes[i] !== open) throw expected(what, bytes, i);
  i = skipSpace(bytes, i + 1);
  if (bytes[i] !== close) {
    for (;;) {
      i = skipSpace(bytes, entry(i));
      if (bytes[i] === close) break;
      if (bytes[i] !== COMMA) throw expected(`, or ${String.fromCharCode(close)}`, bytes, i);
      i = skipSpace(bytes, i + 1);
    }
  }
  if (skipSpace(bytes, i + 1) !== bytes.length) throw new NotJson(`bytes after the ${what} at byte ${i + 1}`);
}

/** The members of the JSON object that `bytes` holds, in order (a repeated name appears twice). */
export function objectMembers(bytes: Buffer): Member[] {
  const members: Member[] = [];
  entries(bytes, OPEN_OBJECT, CLOSE_OBJECT, 'a JSON object', (at) => {
    if (bytes[at] !== QUOTE) throw expected('a member name', bytes, at);
    const key = { start: at, end: stringEnd(bytes, at) };
    const colon = skipSpace(bytes, key.end);
    if (bytes[colon] !== COLON) throw expected(':', bytes, colon);
    const start = skipSpace(bytes, colon + 1);
    if (start >= bytes.length) throw expected('a JSON value', bytes, start);
    const value = { start, end: valueEnd(bytes, start) };
    members.push({ key, value });
    return value.end;
  });
  return members;
}

/** The elements of the JSON array that `bytes` holds, in order. */
export function arrayElements(bytes: Buffer): Span[] {
  const elements: Span[] = [];
  entries(bytes, OPEN_ARRAY, CLOSE_ARRAY, 'a JSON array', (start) => {
    if (start >= bytes.length) throw expected('a JSON value', bytes, start);
    const element = { start, end: valueEnd(bytes, start) };
    elements.push(element);
    return element.end;
  });
  return elements;
}
