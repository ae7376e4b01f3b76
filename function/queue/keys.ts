/**
 * The Redis keys of one queue. Every key of a queue carries the queue's Redis Cluster hash tag, so
 * each Lua script and each multi-key command touches a single slot, and several queues spread over
 * the shards of a cluster.
 *
 * (Queues `x` and `{x}` would share one family; use one or the other.)
 *
 * For the default queue key `job-robot:queue` (no braces) the family is:
 *
 * | key                                     | type   | holds                                              |
 * |-----------------------------------------|--------|----------------------------------------------------|
 * | `job-robot:queue`                       | list   | the queue producers push to (or a stream)          |
 * | `{job-robot:queue}:processing:<c>`      | list   | items consumer `c` moved with BLMOVE, not yet stamped |
 * | `{job-robot:queue}:items`               | hash   | event id -> item bytes, for every claimed item     |
 * | `{job-robot:queue}:claims:<c>`          | set    | event ids consumer `c` holds                       |
 * | `{job-robot:queue}:consumers`           | zset   | consumer -> lease expiry (Redis server time, ms)   |
 * | `{job-robot:queue}:attempts`            | hash   | event id -> failed delivery attempts so far        |
 * | `{job-robot:queue}:adopted`             | hash   | consumer -> the consumer it last adopted and the ids, until the reply arrives |
| `{job-robot:queue}:last-claim`          | hash   | consumer -> the id prefix of its last claim call that moved items |
 * | `{job-robot:queue}:dead-letter`         | stream | dead-lettered items with id, reason, status, attempts, time |
 * | `{job-robot:queue}:result:<id>`         | hash   | what became of the item with event id `<id>` (function/queue/results.ts), until it expires |
 * | `{job-robot:queue}:results`             | stream | one entry per item that reached a final state, for producers to XREAD |
 *
 * A key without braces hashes whole, so `job-robot:queue` and `{job-robot:queue}:...` share a slot.
 * A queue key that already has a hash tag (`orders:{jobs}:queue`) keeps it: the family is then
 * `orders:{jobs}:queue:items` and so on. Stream mode uses the queue, `attempts`, `dead-letter` and the results.
 */

export interface QueueKeys {
  queue: string;
  items: string;
  attempts: string;
  consumers: string;
  deadLetter: string;
  processing(consumer: string): string;
  claims(consumer: string): string;
  adopted: string;
  lastClaim: string;
  /** The result record of event `id`; every one starts with `resultPrefix`. */
  result(id: string): string;
  resultPrefix: string;
  results: string;
}

/**
 * The part of `key` Redis Cluster hashes: the text between the first `{` and the first `}` after
 * it, when that text is not empty; otherwise undefined (the whole key is hashed).
 */
export function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return undefined;
  return key.slice(open + 1, close);
}

/** What Redis Cluster hashes to place `key`: its hash tag, or the whole key. */
export function slotText(key: string): string {
  return hashTag(key) ?? key;
}

/**
 * The prefix every derived key of `queueKey` starts with, or an explanation of why the key cannot
 * carry a family (a `}` outside a hash tag would make the wrapped tag hash differently).
 */
export function familyPrefix(queueKey: string): { prefix: string } | { problem: string } {
  if (hashTag(queueKey) !== undefined) return { prefix: queueKey };
  if (queueKey.includes('}')) {
    return { problem: 'must not contain "}" unless it holds a Redis Cluster hash tag such as "{jobs}"' };
  }
  return { prefix: `{${queueKey}}` };
}

/** The key family of a queue; `deadLetter` overrides the default dead-letter key (same slot required). */
export function queueKeys(queueKey: string, deadLetter?: string): QueueKeys {
  const family = familyPrefix(queueKey);
  if ('problem' in family) throw new Error(`queue key ${JSON.stringify(queueKey)} ${family.problem}`);
  const p = family.prefix;
  return {
    queue: queueKey,
    items: `${p}:items`,
    attempts: `${p}:attempts`,
    consumers: `${p}:consumers`,
    deadLetter: deadLetter ?? `${p}:dead-letter`,
    processing: (consumer) => `${p}:processing:${consumer}`,
    claims: (consumer) => `${p}:claims:${consumer}`,
    adopted: `${p}:adopted`,
    lastClaim: `${p}:last-claim`,
    result: (id) => `${p}:result:${id}`,
    resultPrefix: `${p}:result:`,
    results: `${p}:results`,
  };
}

/** True when both keys hash to the same Redis Cluster slot by construction (same hash text). */
export function sameSlot(a: string, b: string): boolean {
  return slotText(a) === slotText(b);
}
