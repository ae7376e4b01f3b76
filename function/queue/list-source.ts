/**
 * List mode: producers LPUSH (or RPUSH) onto a plain Redis list.
 *
 * Claiming is push-driven. The claim script stamps items straight from the queue while there are
 * any; when the queue is empty the bridge blocks in BLMOVE (on its own connection), which moves the
 * next item into this consumer's processing list the moment it is pushed, and the claim script then
 * stamps it. A crash between BLMOVE and the stamp leaves the item, unstamped, in the processing
 * list: the same consumer stamps it on restart (the claim script always empties the processing
 * list first), or, once the lease expires, another replica puts it back on the queue. Either way it
 * is stamped once, by one atomic script, and keeps that id through every retry, restart and
 * adoption. One deliberate exception: on shutdown, items this process stamped but never handed to
 * the sender go back to the queue without their ids. No one has seen those ids, so every item still
 * reaches the sink under exactly one id.
 *
 * Acknowledgements are batched and ride along with the next claim script call (or go alone after
 * a couple of milliseconds), so a busy bridge makes about one Redis round trip per batch of items.
 *
 * The scripts measure each item (see Intake): one over the limit is dead-lettered in Redis, under
 * an id of its own, before anything reaches this process. BLMOVE returns the item it moved too;
 * its connection drops a reply past the limit (ReplyLimit), and the next claim dead-letters the
 * item from the processing list.
 */
import { Batcher } from './batch.ts';
import type { DeadLetterNote } from './dead-letter.ts';
import { noteFields } from './dead-letter.ts';
import { MAX_BATCH, batchId, uuidv7Prefix, uuidv7Time } from './ids.ts';
import { intakeResults, noteArgs, report, type Intake } from './intake.ts';
import type { QueueKeys } from './keys.ts';
import type { RedisClient } from './connection.ts';
import { producerId } from './producer-id.ts';
import { ReplyLimit } from './reply-limit.ts';
import { defineScripts, type Scripts } from './scripts.ts';
import type { Claim, Source } from './source.ts';


/** What a claim script hands back: the items, and id, reason, size of each item it dead-lettered itself. */
type Reply = [Buffer[], (Buffer | number)[]];

export interface ListSourceOptions {
  /** Commands and scripts. */
  client: RedisClient;
  /** A connection of its own for BLMOVE, which blocks it. */
  blocking: RedisClient;
  keys: QueueKeys;
  consumer: string;
  /** The end producers push to; the bridge takes from the other. */
  pushEnd: 'left' | 'right';
  leaseMs: number;
  intake: Intake;
  /**
   * ID_FIELD: the JSON field that carries the producer's own id (producer-id.ts). Claimed items
   * that carry one take it as their event id, reserved in Redis (RESERVE) before anyone sees it; one
   * whose id is in flight or done under another item is dead-lettered `duplicate-id` instead.
   */
  idField?: string | undefined;
  /** How long one BLMOVE blocks before it is reissued (it returns at once when an item arrives). */
  blockSeconds?: number;
  /**
   * Replicas that must hold a batch's stamps before it is sent (Redis WAIT, in one round trip with
   * the claim). Without it, a failover that loses an unreplicated claim puts those items back under
   * new ids after they were sent: a second Job each.
   */
  replicas?: ReplicaWait;
}

export interface ReplicaWait {
  count: number;
  timeoutMs: number;
  /** A batch goes out although fewer replicas acknowledged it within the timeout. */
  onShort?: (items: number, acknowledged: number) => void;
}

type Side = 'LEFT' | 'RIGHT';

export class ListSource implements Source {
  private readonly client: RedisClient;
  private readonly blocking: RedisClient;
  private readonly keys: QueueKeys;
  private readonly consumer: string;
  private readonly leaseMs: number;
  private readonly blockSeconds: number;
  private readonly takeEnd: Side;
  private readonly scripts: Scripts;
  private readonly acks: Batcher<string>;
  private interrupted = false;
  /** The last claim call, when it failed: it may have run without its reply reaching us. */
  private unanswered: { prefix: string; count: number } | undefined;
  private readonly replicas: ReplicaWait | undefined;
  private readonly intake: Intake;
  private readonly replyLimit: ReplyLimit;
  private readonly idField: string | undefined;
  /** Claims taken from Redis whose producer ids are not reserved yet (the reservation failed). */
  private unreserved: Claim[] = [];

  constructor(options: ListSourceOptions) {
    this.client = options.client;
    this.blocking = options.blocking;
    this.keys = options.keys;
    this.consumer = options.consumer;
    this.leaseMs = options.leaseMs;
    this.blockSeconds = options.blockSeconds ?? 5;
    this.takeEnd = options.pushEnd === 'left' ? 'RIGHT' : 'LEFT';
    this.replicas = options.replicas && options.replicas.count > 0 ? options.replicas : undefined;
    this.intake = options.intake;
    this.idField = options.idField;
    this.replyLimit = new ReplyLimit(options.blocking, options.intake.maxItemBytes, options.intake.onReplyCut);
    this.scripts = defineScripts(options.client);
    this.acks = new Batcher(async (ids) => {
      await this.scripts.ack(this.keys.items, this.keys.attempts, this.claims, ...ids);
    });
  }

  private get processing(): string {
    return this.keys.processing(this.consumer);
  }

  private get claims(): string {
    return this.keys.claims(this.consumer);
  }

  async start(): Promise<Claim[]> {
    await this.scripts.lease(this.keys.consumers, this.consumer, this.leaseMs);
    const [own, letters] = (await this.scripts.own(
      this.claims, this.keys.items, this.keys.attempts, this.keys.deadLetter, this.keys.adopted, this.intake.maxItemBytes, ...noteArgs(this.intake, this.keys), this.consumer,
    )) as Reply;
    report(this.intake, letters);
    return this.reserved(triples(own));
  }

  async claim(max: number): Promise<Claim[]> {
    const ready = await this.stamp(max);
    if (ready.length || this.interrupted) return ready;
    try {
      this.replyLimit.start();
      await this.blocking.callBuffer('BLMOVE', this.keys.queue, this.processing, this.takeEnd, 'LEFT', this.blockSeconds);
    } catch (err) {
      if (this.interrupted) return [];
      throw err;
    }
    // Whatever BLMOVE moved is stamped now, or, after interrupt(), put back by handBack().
    return this.interrupted ? [] : this.stamp(max);
  }

  /**
   * Stamps up to `max` items (processing list first, then the queue) without blocking. A call that
   * only dead-lettered items is followed by another at once: more may be waiting.
   */
  private async stamp(max: number): Promise<Claim[]> {
    for (;;) {
      const { claims, buried } = await this.stampOnce(max);
      const ready = await this.reserved(claims);
      if (ready.length || (!buried && !claims.length) || this.interrupted) return ready;
    }
  }

  /** One claim script call. Acks waiting for their batch ride along: one round trip instead of two. */
  private async stampOnce(max: number): Promise<{ claims: Claim[]; buried: number }> {
    // After a failed call, the same prefix and count again: the script may have run, and then it
    // returns that batch instead of stamping a new one (see CLAIM in scripts.ts).
    const { prefix, count } = this.unanswered ?? { prefix: uuidv7Prefix(), count: Math.min(max, MAX_BATCH) };
    const pop = this.takeEnd === 'RIGHT' ? 'RPOP' : 'LPOP';
    const acks = this.acks.take();
    let reply: Reply;
    try {
      const args = [
        this.keys.queue, this.processing, this.keys.items, this.claims, this.keys.attempts, this.keys.deadLetter, this.keys.lastClaim,
        pop, acks.items.length, ...acks.items, prefix, count, this.intake.maxItemBytes, this.intake.batchBytes, this.consumer, ...noteArgs(this.intake, this.keys),
      ];
      reply = this.replicas ? await this.claimReplicated(args, this.replicas) : ((await this.scripts.claim(...args)) as Reply);
      acks.settle();
    } catch (err) {
      acks.settle(err);
      this.unanswered = { prefix, count };
      throw err;
    }
    this.unanswered = undefined;
    const [items, letters] = reply;
    const buried = report(this.intake, letters);
    const claimedAt = Date.now();
    const time = new Date(uuidv7Time(batchId(prefix, 0)) ?? claimedAt);
    const claims = items.map((item, n) => ({ id: batchId(prefix, n), item, time, attempts: 0, claimedAt, fresh: true }));
    return { claims, buried };
  }


  /**
   * The claim and a WAIT in one pipeline, so both go to the same server (in a cluster, the master
   * of the queue's slot) and the WAIT covers the claim's writes. A short count still sends: holding
   * the items back while a replica is away would stop the queue; `onShort` counts the exposure.
   */
  private async claimReplicated(args: (string | number)[], wait: ReplicaWait): Promise<Reply> {
    const results = await this.scripts.claimPipeline(args).call('WAIT', wait.count, wait.timeoutMs).exec();
    const [claimed, waited] = results ?? [];
    if (!claimed || claimed[0]) throw claimed?.[0] ?? new Error('the claim pipeline returned no reply');
    const reply = claimed[1] as Reply;
    const acknowledged = waited && !waited[0] ? Number(waited[1]) : 0;
    if (reply[0].length && acknowledged < wait.count) wait.onShort?.(reply[0].length, acknowledged);
    return reply;
  }

  /** Renews this consumer's one lease; adopts every claim of each consumer whose lease expired. */
  async renewAndAdopt(): Promise<Claim[]> {
    const expired = (await this.scripts.lease(this.keys.consumers, this.consumer, this.leaseMs)) as Buffer[];
    const adopted: Claim[] = [];
    for (const name of expired) {
      const dead = name.toString('utf8');
      const reply = (await this.scripts.adopt(
        this.keys.consumers,
        this.keys.processing(dead),
        this.keys.claims(dead),
        this.claims,
        this.keys.queue,
        this.keys.items,
        this.keys.attempts,
        this.keys.adopted,
        this.keys.deadLetter,
        this.keys.lastClaim,
        dead,
        this.takeEnd,
        this.consumer,
        this.intake.maxItemBytes,
        ...noteArgs(this.intake, this.keys),
      )) as Reply | null;
      if (!reply) continue;
      report(this.intake, reply[1]);
      adopted.push(...(await this.reserved(triples(reply[0]))));
      // The reply arrived: no repeat of the call can come any more, so the note can go.
      if (reply[0].length || reply[1].length) await this.client.hdel(this.keys.adopted, this.consumer);
    }
    return adopted;
  }

  /**
   * With ID_FIELD: gives each claim its producer's id, reserved in Redis, and leaves out the
   * duplicates (RESERVE dead-letters them). A claim whose field is there but unusable keeps its own
   * id and carries the problem, so the bridge dead-letters it. Claims whose reservation failed are
   * kept and tried again first on the next call, so none is stranded in this consumer's claims.
   */
  private async reserved(claims: Claim[]): Promise<Claim[]> {
    if (!this.idField) return claims;
    const batch = [...this.unreserved.splice(0), ...claims];
    const named: Claim[] = [];
    const pairs: string[] = [];
    for (const claim of batch) {
      const found = claim.eventId === undefined ? producerId(claim.item, this.idField) : { id: claim.eventId };
      if (found && 'problem' in found) claim.problem = found.problem;
      else if (found) {
        claim.eventId = found.id;
        named.push(claim);
        pairs.push(claim.id, found.id);
      }
    }
    if (!named.length) return batch;
    let verdicts: Buffer[];
    try {
      verdicts = (await this.scripts.reserve(
        this.keys.items, this.keys.attempts, this.claims, this.keys.deadLetter, ...noteArgs(this.intake, this.keys), ...pairs,
      )) as Buffer[];
    } catch (err) {
      this.unreserved.unshift(...batch);
      throw err;
    }
    const duplicates = new Set<Claim>();
    const letters: (string | number)[] = [];
    named.forEach((claim, n) => {
      if (!verdicts[n]?.length) return;
      duplicates.add(claim);
      letters.push(claim.eventId!, 'duplicate-id', claim.item.length);
    });
    report(this.intake, letters);
    return duplicates.size ? batch.filter((c) => !duplicates.has(c)) : batch;
  }

  ack(claim: Claim): Promise<void> {
    return this.acks.add(claim.id);
  }

  async recordAttempts(claim: Claim, attempts: number): Promise<void> {
    await this.scripts.attempt(this.keys.items, this.keys.attempts, claim.id, attempts);
  }

  async deadLetter(claim: Claim, note: DeadLetterNote): Promise<void> {
    await this.scripts.dead(
      this.keys.items, this.keys.attempts, this.claims, this.keys.deadLetter,
      claim.id, claim.eventId ?? claim.id, ...intakeResults(this.intake, this.keys), ...noteFields(note),
    );
  }

  /**
   * Fresh claims never sent go back to the head of the queue without their ids (and without their
   * producer ids' reservations), so any replica
   * blocked in BLMOVE takes them at once; everything else keeps its id and is released for
   * adoption (the lease is expired now, not after LEASE_MS).
   */
  async handBack(unsent: readonly Claim[]): Promise<void> {
    const fresh = unsent.filter((c) => c.fresh).reverse().flatMap((c) => [c.id, c.eventId ?? '']);
    await this.scripts.release(
      this.keys.consumers, this.processing, this.keys.queue, this.claims, this.keys.items, this.keys.lastClaim,
      this.consumer, this.takeEnd, this.keys.resultPrefix, ...fresh,
    );
  }

  interrupt(): void {
    this.interrupted = true;
    this.blocking.disconnect();
  }

  async depth(): Promise<number> {
    return this.client.llen(this.keys.queue);
  }
}

/** id, item, attempts, ... into claims. */
function triples(reply: Buffer[]): Claim[] {
  const claimedAt = Date.now();
  const out: Claim[] = [];
  for (let i = 0; i + 2 < reply.length; i += 3) {
    const id = reply[i]!.toString('utf8');
    out.push({
      id,
      item: reply[i + 1]!,
      time: new Date(uuidv7Time(id) ?? claimedAt),
      attempts: Number(reply[i + 2]!.toString('utf8')) || 0,
      claimedAt,
    });
  }
  return out;
}
