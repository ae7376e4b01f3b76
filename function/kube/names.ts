import { createHash } from 'node:crypto';

/** Hex characters of the identity hash: 128 bits, far beyond any namespace's Job count. */
export const IDENTITY_HASH_LENGTH = 32;
/** Longest Job name prefix that still leaves room for the hash inside 63 characters. */
export const MAX_PREFIX_LENGTH = 63 - IDENTITY_HASH_LENGTH;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PREFIX = /^[a-z]([-a-z0-9]*)?$/;

/**
 * Hash of an event's identity (source, id). The pair is encoded unambiguously, so
 * ("a/b", "c") and ("a", "b/c") never collide by construction.
 */
export function identityHash(source: string, id: string): string {
  return createHash('sha256').update(JSON.stringify([source, id])).digest('hex').slice(0, IDENTITY_HASH_LENGTH);
}

/** Whether `prefix` can start a Job name: lowercase letter first, then [-a-z0-9], short enough. */
export function isValidPrefix(prefix: string): boolean {
  return prefix.length <= MAX_PREFIX_LENGTH && (prefix === '' || PREFIX.test(prefix));
}

/** Job name for an event: prefix + identity hash. Always a DNS-1123 label of at most 63 characters. */
export function jobName(prefix: string, source: string, id: string): string {
  if (!isValidPrefix(prefix)) throw new RangeError(`invalid Job name prefix ${JSON.stringify(prefix)}`);
  return `${prefix}${identityHash(source, id)}`;
}

export const isDns1123Label = (s: string): boolean => s.length <= 63 && DNS1123_LABEL.test(s);
