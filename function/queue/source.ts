/** What the bridge needs from a queue, whatever its Redis shape (list or stream). */
import type { DeadLetterNote } from './dead-letter.ts';

/** One claimed item. Its `id` names it in Redis for life, and is its CloudEvent id unless `eventId` is set. */
export interface Claim {
  id: string;
  /** The producer's own id for the item (list mode with ID_FIELD): its CloudEvent id instead of `id`. */
  eventId?: string | undefined;
  item: Buffer;
  /** The event time, stable across retries (read from the id). */
  time: Date;
  /** Delivery attempts already counted against MAX_ATTEMPTS (by this or an earlier holder). */
  attempts: number;
  /** When this process got the claim (ms since epoch), for the oldest-claim metric. */
  claimedAt: number;
  /** Set when the item cannot be sent at all; the bridge dead-letters it with this reason. */
  problem?: string | undefined;
  /** Stamped by this process just now (list mode): its id has not been seen by anyone yet. */
  fresh?: boolean | undefined;
}

/** What the bridge holds, for sources that keep a lease per item (stream mode). */
export interface Holding {
  /** Ids of every claim this replica holds. */
  held: readonly string[];
  /** How many more claims it can take now. */
  room: number;
}

export interface Source {
  /** Registers this consumer and returns the claims it held before a restart. */
  start(): Promise<Claim[]>;
  /** Claims up to `max` items, blocking until at least one arrives, a timeout, or `interrupt()`. */
  claim(max: number): Promise<Claim[]>;
  /**
   * Periodic upkeep, every third of the lease: renews this consumer's leases and returns the claims
   * it adopted from consumers whose leases expired.
   *
   * `holding` matters only where leases are kept per item: the stream source renews the lease of
   * each `held` entry and adopts at most `room` entries per call. The list source keeps one lease
   * per consumer and adopts an expired consumer's claims whole, so it takes no `holding`.
   */
  renewAndAdopt(holding: Holding): Promise<Claim[]>;
  /** The sink took it: remove it from Redis. */
  ack(claim: Claim): Promise<void>;
  /** Persists the attempts counted so far, so a restart does not reset them. */
  recordAttempts(claim: Claim, attempts: number): Promise<void>;
  /** Moves the item to the dead-letter stream. */
  deadLetter(claim: Claim, note: DeadLetterNote): Promise<void>;
  /**
   * Shutdown: makes everything this consumer still holds available to other replicas now.
   * `unsent` are claims the bridge never handed to the sender.
   */
  handBack(unsent: readonly Claim[]): Promise<void>;
  /** Unblocks a pending `claim()` for good (shutdown). */
  interrupt(): void;
  /** Items waiting in the queue, for the depth gauge. */
  depth(): Promise<number>;
}
