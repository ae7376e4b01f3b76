/**
 * Bytes the sink keeps, and the request body read into them: at most the request limit is held in
 * memory; whatever follows only passes through SHA-256 and is counted, so the record can still say
 * how large the body was and what it hashed to.
 */
import { createHash } from 'node:crypto';
import { InvalidEvent } from '../http/errors.ts';

/** Some bytes, or their first part: `size` and `sha256()` describe them whole. */
export interface Whole {
  bytes: Buffer;
  size: number;
  /** Hex SHA-256 of all `size` bytes. */
  sha256(): string;
}

/** Bytes held whole; the digest is computed only when asked for. */
export function wholeOf(bytes: Buffer): Whole {
  return { bytes, size: bytes.length, sha256: () => createHash('sha256').update(bytes).digest('hex') };
}

/** Whether only the first part of the bytes was read. */
export const isCut = (w: Whole): boolean => w.bytes.length < w.size;

/** Reads `body` to its end, keeping its first `limitBytes` bytes and hashing all of them. */
export async function readBody(body: AsyncIterable<Buffer>, limitBytes: number): Promise<Whole> {
  const hash = createHash('sha256');
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let size = 0;
  try {
    for await (const chunk of body) {
      hash.update(chunk);
      size += chunk.length;
      if (keptBytes < limitBytes) {
        const part = chunk.subarray(0, limitBytes - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
    }
  } catch {
    throw new InvalidEvent('the request ended before its body did', 'aborted');
  }
  const digest = hash.digest('hex');
  return { bytes: Buffer.concat(kept, keptBytes), size, sha256: () => digest };
}
