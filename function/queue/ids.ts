/**
 * Event ids for list items: UUIDv7 (RFC 9562), made when the bridge claims items and stamped onto
 * them in Redis in the same atomic step. Random, so ids never repeat even if Redis loses state in a
 * failover; time-ordered, so the event time can be read back from the id and stays the same
 * through every retry and restart. One claim call draws one random UUIDv7 and its items take it
 * with the last four hex digits counting 0000, 0001, ... (see `uuidv7Prefix`).
 */
import { randomFillSync } from 'node:crypto';

const POOL_IDS = 256;
const pool = Buffer.alloc(POOL_IDS * 10);
let used = POOL_IDS;

function randomTen(): Buffer {
  if (used === POOL_IDS) {
    randomFillSync(pool);
    used = 0;
  }
  const slice = pool.subarray(used * 10, used * 10 + 10);
  used += 1;
  return slice;
}

/** A UUIDv7 for `nowMs`; `random` (10 bytes) is for tests. */
export function uuidv7(nowMs: number = Date.now(), random: Buffer = randomTen()): string {
  const b = Buffer.alloc(16);
  b.writeUIntBE(nowMs, 0, 6);
  random.copy(b, 6, 0, 10);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The first 32 characters of a fresh UUIDv7: the claim script appends four hex digits counting the
 * items of one claim (0000, 0001, ...), so one random draw names a whole batch. Ids of a batch
 * share their time and all but 16 of their 74 random bits.
 */
export function uuidv7Prefix(nowMs: number = Date.now()): string {
  return uuidv7(nowMs).slice(0, 32);
}

/** Most items one claim may stamp under one prefix. */
export const MAX_BATCH = 0x10000;

/** The id of the n-th item (from 0) stamped under `prefix`: the claim script's rule, on this side. */
export function batchId(prefix: string, n: number): string {
  return prefix + n.toString(16).padStart(4, '0');
}

const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The millisecond timestamp inside a UUIDv7, or undefined for anything else. */
export function uuidv7Time(id: string): number | undefined {
  if (!UUIDV7.test(id)) return undefined;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/** The millisecond timestamp of a stream entry id (`<ms>-<seq>`), or undefined. */
export function streamIdTime(id: string): number | undefined {
  const m = /^(\d+)-\d+$/.exec(id);
  return m ? Number(m[1]) : undefined;
}
