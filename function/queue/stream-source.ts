/**
 * Stream mode: producers XADD; the bridge reads with a consumer group, one consumer per replica.
 * The entry id is the CloudEvent id. An entry read with XREADGROUP is in this consumer's pending
 * list until acknowledged, so a crash loses nothing: on restart the consumer re-reads its own
 * pending entries, and entries idle longer than the lease (a dead consumer's) are taken over with
 * XAUTOCLAIM. A live consumer keeps its entries from looking idle by touching them at every renewal.
 * The group is created at `0` on first start, so entries queued before it are delivered too, and
 * the bridge never destroys it.
 */
import { isUtf8 } from 'node:buffer';
import { Batcher } from './batch.ts';
import type { DeadLetterNote } from './dead-letter.ts';
import { noteFields } from './dead-letter.ts';
import { streamIdTime } from './ids.ts';
import type { QueueKeys } from './keys.ts';
import type { RedisClient } from './connection.ts';
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
  blockMs?: number;
  /**
   * Told about pending entries Redis dropped because someone deleted or trimmed them from the
   * stream before they were delivered (XAUTOCLAIM reports them; their content is gone).
   */
  onDeleted?: (ids: string[]) => void;
}

type Entry = [id: Buffer, fields: Buffer[] | null];

/** Renewals between two prunings of departed consumers. */
const PRUNE_EVERY = 30;

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
  private readonly onDeleted: (ids: string[]) => void;
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
    this.onDeleted = options.onDeleted ?? (() => undefined);
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

  async start(): Promise<Claim[]> {
    await this.ensureGroup();
    const own: Claim[] = [];
    let after = '0';
    for (;;) {
      const reply = (await this.client.callBuffer(
        'XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', 500, 'STREAMS', this.keys.queue, after,
      )) as [Buffer, Entry[]][] | null;
      const entries = reply?.[0]?.[1] ?? [];
      if (!entries.length) break;
      own.push(...this.toClaims(entries));
      after = entries[entries.length - 1]![0].toString('utf8');
    }
    return this.withAttempts(own);
  }

  async claim(max: number): Promise<Claim[]> {
    let reply: [Buffer, Entry[]][] | null;
    try {
      reply = (await this.blocking.callBuffer(
        'XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', max, 'BLOCK', this.blockMs, 'STREAMS', this.keys.queue, '>',
      )) as [Buffer, Entry[]][] | null;
    } catch (err) {
      if (this.interrupted) return [];
      // Someone deleted the stream (and with it the group): recreate at 0 and go on.
      if (redisErrorCode(err, 'NOGROUP')) {
        await this.ensureGroup();
        return [];
      }
      throw err;
    }
    return this.toClaims(reply?.[0]?.[1] ?? []);
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
    const reply = (await this.client.callBuffer(
      'XAUTOCLAIM', this.keys.queue, this.group, this.consumer, this.leaseMs, this.cursor, 'COUNT', room,
    )) as [Buffer, Entry[], Buffer[]?];
    this.cursor = reply[0].toString('utf8');
    if (reply[2]?.length) this.onDeleted(reply[2].map((id) => id.toString('utf8')));
    return this.withAttempts(this.toClaims(reply[1].filter((entry) => entry !== null)));
  }

  ack(claim: Claim): Promise<void> {
    return this.acks.add(claim.id);
  }

  async recordAttempts(claim: Claim, attempts: number): Promise<void> {
    await this.scripts.xattempt(this.keys.queue, this.keys.attempts, this.group, claim.id, attempts);
  }

  async deadLetter(claim: Claim, note: DeadLetterNote): Promise<void> {
    await this.scripts.xdead(
      this.keys.queue, this.keys.attempts, this.keys.deadLetter, this.group, claim.id, this.deleteFlag, claim.item, ...noteFields(note),
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

  private toClaims(entries: Entry[]): Claim[] {
    const claimedAt = Date.now();
    return entries.map(([rawId, fields]) => {
      const id = rawId.toString('utf8');
      const time = new Date(streamIdTime(id) ?? claimedAt);
      const { item, problem } = itemOf(fields, this.field);
      return { id, item, time, attempts: 0, claimedAt, problem };
    });
  }

  private async withAttempts(claims: Claim[]): Promise<Claim[]> {
    if (!claims.length) return claims;
    const counts = await this.client.hmget(this.keys.attempts, ...claims.map((c) => c.id));
    return claims.map((c, i) => ({ ...c, attempts: Number(counts[i] ?? 0) || 0 }));
  }
}

/**
 * The item of a stream entry: the value of `field`; without it, the entry's fields as one JSON
 * object (when they are text). A deleted entry (fields nil) has no item left to send.
 */
export function itemOf(fields: Buffer[] | null, field: string): { item: Buffer; problem?: string } {
  if (fields === null) return { item: Buffer.alloc(0), problem: 'the stream entry was deleted before delivery' };
  const pairs: [Buffer, Buffer][] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) pairs.push([fields[i]!, fields[i + 1]!]);
  const named = pairs.find(([name]) => name.toString('utf8') === field && isUtf8(name));
  if (named) return { item: named[1] };
  if (pairs.every(([name, value]) => isUtf8(name) && isUtf8(value))) {
    const object = Object.fromEntries(pairs.map(([name, value]) => [name.toString('utf8'), value.toString('utf8')]));
    return { item: Buffer.from(JSON.stringify(object), 'utf8') };
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
