/**
 * Whether bytes are one JSON text (RFC 8259, as JSON.parse accepts it), decided by one pass over
 * the bytes without building a string or any value: memory is one bit per nesting level.
 * For items too long to JSON.parse just to choose a content type (a `[{},{},...]` array costs about
 * 18 times its size in heap). The bytes must already be valid UTF-8.
 */

const [QUOTE, BACKSLASH, COMMA, COLON, OPEN_OBJECT, CLOSE_OBJECT, OPEN_ARRAY, CLOSE_ARRAY, MINUS, PLUS, DOT, ZERO, NINE] = [
  ...'"\\,:{}[]-+.09',
].map((c) => c.charCodeAt(0));

const isDigit = (b: number | undefined) => b !== undefined && b >= ZERO && b <= NINE;
const isHex = (b: number | undefined) => b !== undefined && (isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66));
/** The escapes after a backslash: " \ / b f n r t (u is handled apart). */
const SIMPLE_ESCAPES = new Set([QUOTE, BACKSLASH, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);
const LITERALS = [Buffer.from('true'), Buffer.from('false'), Buffer.from('null')];

function skipSpace(b: Uint8Array, i: number): number {
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i += 1;
  return i;
}

/** The index after the string starting at `i` (a quote), or -1. */
function string(b: Uint8Array, i: number): number {
  if (b[i] !== QUOTE) return -1;
  for (let j = i + 1; j < b.length; ) {
    const c = b[j]!;
    if (c === QUOTE) return j + 1;
    if (c < 0x20) return -1;
    if (c !== BACKSLASH) {
      j += 1;
    } else if (SIMPLE_ESCAPES.has(b[j + 1]!)) {
      j += 2;
    } else if (b[j + 1] === 0x75 && isHex(b[j + 2]) && isHex(b[j + 3]) && isHex(b[j + 4]) && isHex(b[j + 5])) {
      j += 6;
    } else {
      return -1;
    }
  }
  return -1;
}

function digits(b: Uint8Array, i: number): number {
  while (isDigit(b[i])) i += 1;
  return i;
}

/** The index after the number starting at `i`, or -1: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
function number(b: Uint8Array, i: number): number {
  if (b[i] === MINUS) i += 1;
  if (b[i] === ZERO) i += 1;
  else if (isDigit(b[i])) i = digits(b, i);
  else return -1;
  if (b[i] === DOT) {
    if (!isDigit(b[i + 1])) return -1;
    i = digits(b, i + 1);
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i += 1;
    if (b[i] === PLUS || b[i] === MINUS) i += 1;
    if (!isDigit(b[i])) return -1;
    i = digits(b, i);
  }
  return i;
}

/** The index after the string, number or literal starting at `i`, or -1. */
function scalar(b: Uint8Array, i: number): number {
  if (b[i] === QUOTE) return string(b, i);
  if (b[i] === MINUS || isDigit(b[i])) return number(b, i);
  for (const literal of LITERALS) {
    if (b[i] === literal[0] && literal.every((byte, k) => b[i + k] === byte)) return i + literal.length;
  }
  return -1;
}

/** The index after `"name" :` starting at `i` (spaces allowed around), or -1. */
function member(b: Uint8Array, i: number): number {
  const end = string(b, skipSpace(b, i));
  if (end < 0) return -1;
  const colon = skipSpace(b, end);
  return b[colon] === COLON ? colon + 1 : -1;
}

/** Open containers, innermost on top: one bit each, set for an object. */
class Nesting {
  depth = 0;
  private bits = new Uint8Array(16);

  push(object: boolean): void {
    const byte = this.depth >> 3;
    if (byte === this.bits.length) {
      const wider = new Uint8Array(this.bits.length * 2);
      wider.set(this.bits);
      this.bits = wider;
    }
    const mask = 1 << (this.depth & 7);
    this.bits[byte] = object ? this.bits[byte]! | mask : this.bits[byte]! & ~mask;
    this.depth += 1;
  }

  pop(): void {
    this.depth -= 1;
  }

  /** The byte that closes the innermost container. */
  close(): number {
    const top = this.depth - 1;
    return (this.bits[top >> 3]! >> (top & 7)) & 1 ? CLOSE_OBJECT : CLOSE_ARRAY;
  }
}

export function isJsonText(b: Uint8Array): boolean {
  const open = new Nesting();
  let i = 0;
  for (;;) {
    // A value starts here.
    i = skipSpace(b, i);
    const c = b[i];
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const next = skipSpace(b, i + 1);
      if (b[next] !== (c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) {
        open.push(c === OPEN_OBJECT);
        i = c === OPEN_OBJECT ? member(b, next) : next;
        if (i < 0) return false;
        continue;
      }
      i = next + 1;
    } else {
      i = scalar(b, i);
      if (i < 0) return false;
    }
    // A value ended: close containers until a comma asks for the next value.
    for (;;) {
      i = skipSpace(b, i);
      if (open.depth === 0) return i === b.length;
      const close = open.close();
      if (b[i] === close) {
        open.pop();
        i += 1;
      } else if (b[i] === COMMA) {
        i = close === CLOSE_OBJECT ? member(b, i + 1) : i + 1;
        if (i < 0) return false;
        break;
      } else {
        return false;
      }
    }
  }
}
