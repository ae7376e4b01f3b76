/**
 * Stream mode: producers XADD; the bridge reads with a consumer group, one consumer per replica.
 * The entry id is the CloudEvent id. An entry read with XREADGROUP is in this consumer's pending
 * list until acknowledged, so a crash loses nothing: on restart the consumer re-reads its own
 * pending entries, and entries idle longer than the lease (a dead consumer's) are taken over with
 * XAUTOCLAIM. A live consumer keeps its entries from looking idle by touching them at every renewal.
 * The group is created at `0` on first start, so entries queued before it are delivered too, and
 * the bridge never destroys it.
 *
 * Every read that returns entries runs in a script that measures them first (see Intake): an entry
 * over the limit, or one deleted or trimmed while pending, is dead-lettered in Redis and
 * acknowledged. The bridge claims without blocking; when nothing is there it waits in XREADGROUP
 * BLOCK COUNT 1, whose reply (the entry itself) is cut off past the limit (ReplyLimit), and hands
 * the id it got to the next claim script to measure. An entry whose reply was cut stays pending
 * for this consumer and is adopted, and dead-lettered, once idle past the lease.
 */
import { isUtf8 } from 'node:buffer';
import { Batcher } from './batch.ts';
import type { DeadLetterNote } from './dead-letter.ts';
import { noteFields } from './dead-letter.ts';
import { streamIdTime } from './ids.ts';
import { intakeResults, noteArgs, report, type Intake } from './intake.ts';
import type { QueueKeys } from './keys.ts';
import type { RedisClient } from './connection.ts';
import { ReplyLimit } from './reply-limit.ts';
import { defineScripts, type Scripts } from './scripts.ts';
import type { Claim, Holding, Source } from './source.ts';

export interface StreamSourceOptions {
  client: RedisClient;
  /** A connection of its own for XREADGROUP BLOCK. */
  blocking: RedisClient;
  keys: QueueKeys;
  consumer: string;
  group: string;
  /** The field holding the item. */
  field: string;
  /** XDEL entries once acknowledged or dead-lettered. */
  deleteAcked: boolean;
  leaseMs: number;
  intake: Intake;
  blockMs?: number;
}

type Entry = [id: Buffer, fields: Buffer[] | null];
/** The scripts' letters: id, reason, size, ... */
type Letters = (Buffer | number)[];

/** Renewals between two prunings of departed consumers. */
const PRUNE_EVERY = 30;
/** Pending entries one recovery call looks at. */
const OWN_PAGE = 500;

export class StreamSource implements Source {
  private readonly client: RedisClient;
  private readonly blocking: RedisClient;
  private readonly keys: QueueKeys;
  private readonly consumer: string;
  private readonly group: string;
  private readonly field: string;
  private readonly deleteFlag: string;
  private readonly leaseMs: number;
  private readonly blockMs: number;
  private readonly scripts: Scripts;
  private readonly intake: Intake;
  private readonly replyLimit: ReplyLimit;
  private readonly acks: Batcher<string>;
  private interrupted = false;
  private cursor = '0-0';
  private renewals = 0;

  constructor(options: StreamSourceOptions) {
    this.client = options.client;
    this.blocking = options.blocking;
    this.keys = options.keys;
    this.consumer = options.consumer;
    this.group = options.group;
    this.field = options.field;
    this.deleteFlag = options.deleteAcked ? '1' : '0';
    this.leaseMs = options.leaseMs;
    this.blockMs = options.blockMs ?? 5_000;
    this.intake = options.intake;
    this.replyLimit = new ReplyLimit(options.blocking, options.intake.maxItemBytes, options.intake.onReplyCut);
    this.scripts = defineScripts(options.client);
    this.acks = new Batcher(async (ids) => {
      await this.scripts.xack(this.keys.queue, this.keys.attempts, this.group, this.deleteFlag, ...ids);
    });
  }

  /** Creates the group at 0 (with the stream) unless it exists. */
  private async ensureGroup(): Promise<void> {
    try {
      await this.client.xgroup('CREATE', this.keys.queue, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!redisErrorCode(err, 'BUSYGROUP')) throw err;
    }
  }

  /** The entries still pending for this consumer from before a restart, page by page. */
  async start(): Promise<Claim[]> {
    await this.ensureGroup();
    const own: Claim[] = [];
    let after = '-';
    for (;;) {
      const [claims, letters, examined, last] = (await this.scripts.xown(
        this.keys.queue, this.keys.attempts, this.keys.deadLetter,
        this.group, this.consumer, after, OWN_PAGE, this.intake.maxItemBytes, this.field, this.deleteFlag, ...noteArgs(this.intake, this.keys),
      )) as [Buffer[], Letters, number, Buffer];
      report(this.intake, letters);
      own.push(...this.toClaims(claims, 3));
      if (examined < OWN_PAGE) return own;
      after = last.toString('utf8');
    }
  }

  /** Claims up to `max` new entries; when there are none, waits for one (XREADGROUP BLOCK COUNT 1) and claims that. */
  async claim(max: number): Promise<Claim[]> {
    try {
      const ready = await this.takeAll(max, '');
      if (ready.length || this.interrupted) return ready;
      const woken = await this.wait();
      return woken === undefined || this.interrupted ? [] : await this.takeAll(max, woken);
    } catch (err) {
      if (this.interrupted) return [];
      // Someone deleted the stream (and with it the group): recreate at 0 and go on.
      if (redisErrorCode(err, 'NOGROUP')) {
        await this.ensureGroup();
        return [];
      }
      throw err;
    }
  }

  /** Claim script calls until one hands over claims or finds nothing; one that only dead-lettered may leave more. */
  private async takeAll(max: number, woken: string): Promise<Claim[]> {
    for (let first = woken; ; first = '') {
      const { claims, buried } = await this.take(max, first);
      if (claims.length || !buried || this.interrupted) return claims;
    }
  }

  /** One claim script call: new entries, or with `woken` the entry a blocking read delivered. */
  private async take(max: number, woken: string): Promise<{ claims: Claim[]; buried: number }> {
    const [entries, letters] = (await this.scripts.xtake(
      this.keys.queue, this.keys.attempts, this.keys.deadLetter,
      this.group, this.consumer, max, this.intake.maxItemBytes, this.intake.batchBytes, this.field, this.deleteFlag, ...noteArgs(this.intake, this.keys), woken,
    )) as [Buffer[], Letters];
    return { claims: this.toClaims(entries, 2), buried: report(this.intake, letters) };
  }

  /** Blocks until an entry is delivered to this consumer (its id) or the block times out (undefined). */
  private async wait(): Promise<string | undefined> {
    this.replyLimit.start();
    const reply = (await this.blocking.callBuffer(
      'XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', 1, 'BLOCK', this.blockMs, 'STREAMS', this.keys.queue, '>',
    )) as [Buffer, Entry[]][] | null;
    return reply?.[0]?.[1]?.[0]?.[0].toString('utf8');
  }

  /**
   * Renews the lease of each `held` entry (its idle time goes back to 0), now and then removes
   * departed consumers, and adopts up to `room` entries idle longer than the lease.
   */
  async renewAndAdopt({ held, room }: Holding): Promise<Claim[]> {
    if (held.length) await this.scripts.xtouch(this.keys.queue, this.group, this.consumer, 0, ...held);
    this.renewals += 1;
    if (this.renewals % PRUNE_EVERY === 0) {
      await this.scripts.xprune(this.keys.queue, this.group, this.consumer, Math.max(2 * this.leaseMs, 60_000));
    }
    if (room <= 0) return [];
    const [cursor, claims, letters] = (await this.scripts.xadopt(
      this.keys.queue, this.keys.attempts, this.keys.deadLetter,
      this.group, this.consumer, this.leaseMs, this.cursor, room, this.intake.maxItemBytes, this.intake.batchBytes, this.field, this.deleteFlag,
      ...noteArgs(this.intake, this.keys),
    )) as [Buffer, Buffer[], Letters];
    this.cursor = cursor.toString('utf8');
    report(this.intake, letters);
    return this.toClaims(claims, 3);
  }

  ack(claim: Claim): Promise<void> {
    return this.acks.add(claim.id);
  }

  async recordAttempts(claim: Claim, attempts: number): Promise<void> {
    await this.scripts.xattempt(this.keys.queue, this.keys.attempts, this.group, claim.id, attempts);
  }

  async deadLetter(claim: Claim, note: DeadLetterNote): Promise<void> {
    await this.scripts.xdead(
      this.keys.queue, this.keys.attempts, this.keys.deadLetter, this.group, claim.id, this.deleteFlag, claim.item, ...intakeResults(this.intake, this.keys), ...noteFields(note),
    );
  }

  /** Every entry still pending for this consumer becomes claimable by another replica now. */
  async handBack(): Promise<void> {
    await this.scripts.xleave(this.keys.queue, this.group, this.consumer, this.leaseMs + 1);
  }

  interrupt(): void {
    this.interrupted = true;
    this.blocking.disconnect();
  }

  /** Entries not yet delivered to the group (its lag), or the stream length when Redis cannot tell. */
  async depth(): Promise<number> {
    const groups = (await this.client.call('XINFO', 'GROUPS', this.keys.queue)) as unknown[][];
    for (const g of groups) {
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < g.length; i += 2) info.set(String(g[i]), g[i + 1]);
      if (info.get('name') === this.group && typeof info.get('lag') === 'number') return info.get('lag') as number;
    }
    return this.client.xlen(this.keys.queue);
  }


  /** id, fields (, attempts), ... from a script into claims; `stride` is 2 without attempts, 3 with. */
  private toClaims(reply: (Buffer | Buffer[])[], stride: 2 | 3): Claim[] {
    const claimedAt = Date.now();
    const claims: Claim[] = [];
    for (let i = 0; i + stride - 1 < reply.length; i += stride) {
      const id = String(reply[i]);
      const time = new Date(streamIdTime(id) ?? claimedAt);
      const { item, problem } = itemOf(reply[i + 1] as Buffer[], this.field, this.intake.maxItemBytes);
      const attempts = stride === 3 ? Number(String(reply[i + 2])) || 0 : 0;
      claims.push({ id, item, time, attempts, claimedAt, problem });
    }
    return claims;
  }
}

/**
 * The item of a stream entry: the value of `field`; without it, the entry's fields as one JSON
 * object (when they are text). The scripts measured the fields; written as JSON they can grow
 * (escapes, base64), so that form is measured again against `maxBytes`.
 */
export function itemOf(fields: Buffer[], field: string, maxBytes: number): { item: Buffer; problem?: string } {
  const pairs: [Buffer, Buffer][] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) pairs.push([fields[i]!, fields[i + 1]!]);
  const named = pairs.find(([name]) => name.toString('utf8') === field && isUtf8(name));
  if (named) return { item: named[1] };
  if (pairs.every(([name, value]) => isUtf8(name) && isUtf8(value))) {
    const object = Object.fromEntries(pairs.map(([name, value]) => [name.toString('utf8'), value.toString('utf8')]));
    const item = Buffer.from(JSON.stringify(object), 'utf8');
    if (item.length <= maxBytes) return { item };
    return { item, problem: `too-large: the entry's fields as a JSON object take ${item.length} bytes, over the limit of ${maxBytes} (MAX_ITEM_BYTES)` };
  }
  // Kept whole for the dead letter: [[name, value], ...] in base64.
  const kept = JSON.stringify(pairs.map(([name, value]) => [name.toString('base64'), value.toString('base64')]));
  return {
    item: Buffer.from(kept, 'utf8'),
    problem: `the entry has no "${field}" field and its fields are not text; kept as base64 [name, value] pairs`,
  };
}

/** True when `err` is a Redis error reply with this code (the reply's first word). */
export function redisErrorCode(err: unknown, code: string): boolean {
  return err instanceof Error && err.message.split(' ', 1)[0] === code;
}
