/**
 * The bridge's loop: claim items in batches, keep CONCURRENCY of them in flight to the sink as
 * CloudEvents, and let each item leave Redis only after the sink answered 2xx. Retries back off
 * with jitter and honour Retry-After; refused items and items out of attempts go to the
 * dead-letter stream (a sink refusing the bridge's identity, 401/403, refuses no item: those wait). On stop it claims nothing more, lets sends in progress finish within the
 * grace period, and hands the rest back to Redis for another replica.
 */
import type { Logger } from '../log.ts';
import { backoffDelay, retryDelay } from '../async/backoff.ts';
import { pause, withTimeout } from '../async/wait.ts';
import { eventBuilder, type Outbound } from './event.ts';
import type { BridgeMetrics } from './metrics.ts';
import { classify, type SendResult } from './outcome.ts';
import type { Claim, Source } from '../queue/source.ts';

export interface BridgeOptions {
  source: Source;
  sender: { send(out: Outbound): Promise<SendResult> };
  log: Logger;
  metrics?: BridgeMetrics | undefined;
  concurrency: number;
  maxAttempts: number;
  backoff: { minMs: number; maxMs: number };
  leaseMs: number;
  event: { source: string; type: string; extensions: Readonly<Record<string, string>> };
  /** Told when the sink refuses the bridge's identity (401/403) and when it takes an event again. */
  identity?: { refused(status: number): void; accepted(): void } | undefined;
  random?: () => number;
}

/** Delay between retries of Redis bookkeeping (ack, dead-letter, claims) while Redis misbehaves. */
const REDIS_RETRY = { minMs: 100, maxMs: 5_000 };
/** How long shutdown waits for Redis to take the hand-back. */
const HAND_BACK_TIMEOUT_MS = 5_000;

export class Bridge {
  private readonly source: Source;
  private readonly sender: BridgeOptions['sender'];
  private readonly log: Logger;
  private readonly metrics: BridgeMetrics | undefined;
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly backoff: { minMs: number; maxMs: number };
  private readonly leaseMs: number;
  private readonly event: BridgeOptions['event'];
  private readonly buildEvent: ReturnType<typeof eventBuilder>;
  private readonly identity: BridgeOptions['identity'];
  private readonly random: () => number;

  /** Every claim this replica holds, by id: waiting for a slot, being sent, or being settled in Redis. */
  private readonly held = new Map<string, Claim>();
  /** Claims waiting for a send slot: claimed ahead, recovered or adopted. */
  private readonly waiting: Claim[] = [];
  /** Ids holding a send slot (sending, or waiting out a retry); at most CONCURRENCY. */
  private readonly sending = new Set<string>();
  private readonly deliveries = new Set<Promise<void>>();
  /** Aborted by `stop()`: ends the pauses in progress then. */
  private readonly halt = new AbortController();
  private slotFreed: (() => void) | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(options: BridgeOptions) {
    this.source = options.source;
    this.sender = options.sender;
    this.log = options.log;
    this.metrics = options.metrics;
    this.concurrency = options.concurrency;
    this.maxAttempts = options.maxAttempts;
    this.backoff = options.backoff;
    this.leaseMs = options.leaseMs;
    this.event = options.event;
    this.buildEvent = eventBuilder(options.event);
    this.identity = options.identity;
    this.random = options.random ?? Math.random;
  }

  /** Recovers this consumer's earlier claims, then claims continuously until `stop()`. */
  async start(): Promise<void> {
    const own = await this.persist(undefined, 'register and recover earlier claims', () => this.source.start(), true);
    if (own === undefined) return;
    if (own.length) this.log.info({ count: own.length }, 'recovered claims held before a restart');
    this.accept(own, 'recovered');
    this.loop = this.claimLoop();
    this.sweepTimer = setInterval(() => void this.sweep(), Math.max(50, Math.floor(this.leaseMs / 3)));
    void this.sweep();
  }

  /** Claims held by this replica: being sent, waiting to retry, or waiting for a slot. */
  inFlight(): number {
    return this.held.size;
  }

  oldestClaimAge(): number {
    let oldest = Infinity;
    for (const claim of this.held.values()) oldest = Math.min(oldest, claim.claimedAt);
    return oldest === Infinity ? 0 : (Date.now() - oldest) / 1000;
  }

  /**
   * Stops claiming, wakes retries that are waiting (they are handed back, not retried), lets sends
   * in progress finish for up to `graceMs`, then hands back whatever is still held.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const deadline = Date.now() + graceMs;
    clearInterval(this.sweepTimer);
    this.source.interrupt();
    this.freeSlot();
    this.halt.abort();
    await withTimeout(Promise.all([this.loop, this.sweeping]), deadline - Date.now());
    await withTimeout(Promise.all([...this.deliveries]), deadline - Date.now());
    const left = this.inFlight();
    const unsent = [...this.waiting];
    // True once Redis answered the hand-back, taken or refused (a refusal is logged here); undefined when it did not answer in time.
    const redisAnswered = await withTimeout(
      this.source.handBack(unsent).then(
        () => true,
        (err: unknown) => {
          this.log.warn({ err: String(err) }, 'hand-back failed; the lease expiry will release the claims');
          return true;
        },
      ),
      HAND_BACK_TIMEOUT_MS,
    );
    if (!redisAnswered) this.log.warn('Redis did not take the hand-back in time; the lease expiry will release the claims');
    this.log.info({ stillHeld: left }, 'bridge stopped');
  }

  /**
   * How many more claims this replica may take. It keeps up to three times CONCURRENCY unanswered:
   * CONCURRENCY being sent, and up to twice as many claimed ahead, so a send that finishes starts
   * the next one without waiting for Redis, and claims come in batches of at least CONCURRENCY.
   * (Claims the sink has answered, waiting for their ack to reach Redis, do not count.) Claims held
   * ahead are in Redis under this consumer like any other, so a crash loses none of them.
   */
  private room(): number {
    return 3 * this.concurrency - this.waiting.length - this.sending.size;
  }

  /** Claim in batches: wait until there is room for at least this many before claiming again. */
  private get batch(): number {
    return this.concurrency;
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const room = this.room();
      if (room < this.batch) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      try {
        const claims = await this.source.claim(room);
        failures = 0;
        this.accept(claims, 'new');
      } catch (err) {
        if (this.stopping) break;
        failures += 1;
        this.log.warn({ err: String(err), failures }, 'claiming failed; retrying with backoff');
        await this.pause(backoffDelay(failures, REDIS_RETRY.minMs, REDIS_RETRY.maxMs, this.random));
      }
    }
  }

  private async sweep(): Promise<void> {
    if (this.sweeping || this.stopping) return;
    this.sweeping = this.source
      .renewAndAdopt({ held: [...this.held.keys()], room: Math.max(0, this.room()) })
      .then(
        (adopted) => {
          if (!adopted.length) return;
          this.log.info({ count: adopted.length }, 'adopted claims whose holder stopped renewing its lease');
          this.accept(adopted, 'adopted');
        },
        (err: unknown) => this.log.warn({ err: String(err) }, 'lease upkeep failed; trying again at the next sweep'),
      )
      .finally(() => (this.sweeping = undefined));
    await this.sweeping;
  }

  private accept(claims: Claim[], how: 'new' | 'recovered' | 'adopted'): void {
    let taken = 0;
    for (const claim of claims) {
      if (this.held.has(claim.id)) continue;
      this.held.set(claim.id, claim);
      this.waiting.push(claim);
      taken += 1;
    }
    if (taken) this.metrics?.claimed.inc({ how }, taken);
    this.next();
  }

  /** Starts waiting claims while send slots are free; wakes the claim loop when there is room. */
  private next(): void {
    if (this.stopping) return;
    while (this.waiting.length && this.sending.size < this.concurrency) this.launch(this.waiting.shift()!);
    if (this.room() >= this.batch) this.freeSlot();
  }

  private launch(claim: Claim): void {
    this.sending.add(claim.id);
    const delivery: Promise<void> = this.deliver(claim)
      .catch((err: unknown) => {
        // deliver() handles every expected failure; anything else is a bug. The claim stays in
        // Redis and is handed back at shutdown or adopted after the lease.
        this.log.error({ eventId: claim.id, err: String(err) }, 'delivery failed unexpectedly');
      })
      .finally(() => {
        this.releaseSlot(claim.id);
        this.held.delete(claim.id);
        this.deliveries.delete(delivery);
        this.next();
      });
    this.deliveries.add(delivery);
  }

  private releaseSlot(id: string): void {
    if (this.sending.delete(id)) this.next();
  }

  private freeSlot(): void {
    const resolve = this.slotFreed;
    this.slotFreed = undefined;
    resolve?.();
  }

  /**
   * Sends one claim until the sink takes it, refuses it, attempts run out, or the bridge stops;
   * then gives the send slot to the next claim and settles this one in Redis (ack or dead-letter).
   */
  private async deliver(claim: Claim): Promise<void> {
    if (claim.problem) {
      this.releaseSlot(claim.id);
      await this.bury(claim, 'unsendable', { reason: claim.problem, status: 0, attempts: claim.attempts });
      return;
    }
    let attempts = claim.attempts;
    const out = this.buildEvent(claim.eventId ?? claim.id, claim.time, claim.item);
    for (let tries = 1; !this.stopping; tries++) {
      const outcome = classify(await this.sender.send(out), Date.now());
      if (outcome.kind === 'delivered') {
        this.identity?.accepted();
        this.releaseSlot(claim.id);
        await this.persist(claim.id, 'acknowledge', () => this.source.ack(claim));
        this.metrics?.delivered.inc();
        this.metrics?.deliverySeconds.observe((Date.now() - claim.claimedAt) / 1000);
        if (this.log.isLevelEnabled('debug')) this.log.debug({ eventId: claim.eventId ?? claim.id, status: outcome.status, tries }, 'delivered');
        return;
      }
      if (outcome.kind === 'rejected') {
        this.releaseSlot(claim.id);
        await this.bury(claim, 'rejected', { reason: outcome.reason, status: outcome.status, attempts: attempts + 1 });
        return;
      }
      if (outcome.counted) {
        attempts += 1;
        if (attempts >= this.maxAttempts) {
          this.releaseSlot(claim.id);
          const reason = `gave up after ${attempts} attempts; last: ${outcome.reason}`;
          await this.bury(claim, 'attempts', { reason, status: outcome.status, attempts });
          return;
        }
        await this.persist(claim.id, 'record attempts', () => this.source.recordAttempts(claim, attempts));
      }
      if (outcome.label === 'refused-identity') this.identity?.refused(outcome.status);
      this.metrics?.retried.inc({ reason: outcome.label });
      const delayMs = retryDelay(tries, outcome.retryAfterMs, this.backoff.minMs, this.backoff.maxMs, this.random);
      const detail = { eventId: claim.eventId ?? claim.id, status: outcome.status, reason: outcome.reason, attempts, tries, delayMs };
      if (tries === 1) this.log.info(detail, 'delivery failed; retrying with backoff');
      else this.log.debug(detail, 'retrying');
      await this.pause(delayMs);
    }
    // Stopping: the claim stays held in Redis and is handed back.
  }

  private async bury(
    claim: Claim,
    label: 'rejected' | 'attempts' | 'unsendable',
    note: { reason: string; status: number; attempts: number },
  ): Promise<void> {
    await this.persist(claim.id, 'dead-letter', () => this.source.deadLetter(claim, { ...note, time: new Date(), source: this.event.source }));
    this.metrics?.deadLettered.inc({ reason: label });
    this.log.warn({ eventId: claim.eventId ?? claim.id, ...note }, 'dead-lettered');
  }

  /**
   * Runs Redis bookkeeping until it succeeds (ioredis itself waits through reconnects). With
   * `giveUpOnStop`, returns undefined once the bridge is stopping.
   */
  private async persist<T>(eventId: string | undefined, what: string, run: () => Promise<T>, giveUpOnStop = false): Promise<T | undefined> {
    for (let failures = 1; ; failures++) {
      if (giveUpOnStop && this.stopping) return undefined;
      try {
        return await run();
      } catch (err) {
        this.log.warn({ eventId, err: String(err), failures }, `Redis: ${what} failed; retrying with backoff`);
        await this.pause(backoffDelay(failures, REDIS_RETRY.minMs, REDIS_RETRY.maxMs, this.random));
      }
    }
  }

  /**
   * Waits `ms`; a pause in progress when the bridge stops ends then. Pauses begun after the stop
   * run their full time: Redis bookkeeping (ack, dead-letter) goes on retrying after a stop.
   */
  private pause(ms: number): Promise<void> {
    return pause(ms, this.stopping ? undefined : this.halt.signal);
  }
}
