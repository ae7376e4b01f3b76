/**
 * Reading one item's status: its result record (function/queue/results.ts), else its Job, found by
 * the identity label the launcher puts on it (the hash of event source and id, kube/names.ts), so
 * the launcher's JOB_NAME_PREFIX does not matter. With a wait, the results stream is read from the
 * entry that was last before the first check, so a result recorded in between is not missed.
 */
import type { BatchV1ApiListNamespacedJobRequest, ConfigurationOptions, V1Job, V1JobList } from '@kubernetes/client-node';
import { jobEvent } from '../kube/job-outcome.ts';
import { IDENTITY_LABEL } from '../kube/labels.ts';
import { identityHash } from '../kube/names.ts';
import type { RedisClient } from '../queue/connection.ts';
import type { QueueKeys } from '../queue/keys.ts';
import { isFinal, parseResult, Results, type ResultRecord } from '../queue/results.ts';
import { fromJob, fromRecord, unknownItem, type ItemStatus } from './item.ts';

/** The one call made to the Jobs API; BatchV1Api satisfies it. */
export interface JobsReader {
  listNamespacedJob(param: BatchV1ApiListNamespacedJobRequest, options?: ConfigurationOptions): Promise<V1JobList>;
}

/** Where the item's Job may be. */
export interface JobsPlace {
  api: JobsReader;
  namespace: string;
  /** Per-call options (deadline). */
  call?: () => ConfigurationOptions;
}

/** Something went wrong asking Redis or the API server; `fix` when the operator must act. */
export class LookupFailed extends Error {
  override name = 'LookupFailed';
  readonly source: 'redis' | 'kubernetes';
  /** Where the Job was looked for (source `kubernetes`). */
  readonly namespace: string | undefined;
  constructor(source: 'redis' | 'kubernetes', message: string, cause: unknown, namespace?: string) {
    super(message, { cause });
    this.source = source;
    this.namespace = namespace;
  }
}

/** The Job made for event (source, id), if it exists: the identity label selects, the annotations confirm. */
export async function findJob(place: JobsPlace, source: string, id: string): Promise<V1Job | undefined> {
  const list = await place.api.listNamespacedJob(
    { namespace: place.namespace, labelSelector: `${IDENTITY_LABEL}=${identityHash(source, id)}`, limit: 10 },
    place.call?.(),
  );
  return list.items.find((job) => {
    const event = jobEvent(job);
    return event?.id === id && event.source === source;
  });
}

/** Entries read per XREAD: bounded memory however busy the stream is. */
const READ_COUNT = 500;
/** Longest single XREAD BLOCK; the wait is a series of them up to its deadline. */
export const BLOCK_SLICE_MS = 10_000;

export interface StatusLookupDeps {
  /** Commands that answer at once (with a deadline). */
  redis: RedisClient;
  keys: QueueKeys;
  /** The bridge's event source. */
  source: string;
  /** Where the Job is looked for; asked only when there is no record. */
  jobs: () => JobsPlace;
  /** Describes the Redis for messages. */
  describe: string;
}

export class StatusLookup {
  private readonly deps: StatusLookupDeps;
  private readonly results: Results;

  constructor(deps: StatusLookupDeps) {
    this.deps = deps;
    this.results = new Results(deps.redis, deps.keys);
  }

  /** The item's status now. Rejects with LookupFailed. */
  async check(id: string): Promise<ItemStatus> {
    const record = await this.redis(() => this.results.get(id));
    if (record) return fromRecord(record, this.deps.source);
    const place = this.deps.jobs();
    let job: V1Job | undefined;
    try {
      job = await findJob(place, this.deps.source, id);
    } catch (err) {
      throw new LookupFailed('kubernetes', "cannot look for the item's Job", err, place.namespace);
    }
    return job ? fromJob(job, id, this.deps.source, place.namespace) : unknownItem(id, this.deps.source, place.namespace);
  }

  /**
   * The status once it is final, or the status at the deadline (`timedOut`). `blocking` carries the
   * XREAD BLOCKs (a connection of its own: they hold it).
   */
  async wait(id: string, seconds: number, blocking: RedisClient, now: () => number = Date.now): Promise<{ status: ItemStatus; timedOut: boolean }> {
    const deadline = now() + seconds * 1000;
    let from = await this.redis(() => this.lastEntry());
    const first = await this.check(id);
    if (first.final) return { status: first, timedOut: false };
    for (let left = deadline - now(); left > 0; left = deadline - now()) {
      const block = Math.max(1, Math.min(BLOCK_SLICE_MS, Math.ceil(left)));
      const reply = await this.redis(() => blocking.xread('COUNT', READ_COUNT, 'BLOCK', block, 'STREAMS', this.deps.keys.results, from));
      for (const [entryId, fields] of reply?.[0]?.[1] ?? []) {
        from = entryId;
        const entry = entryRecord(fields);
        if (entry?.id !== id || !isFinal(entry.state)) continue;
        // The record itself is the whole answer (with `accepted`); the entry stands in if it expired.
        const record = (await this.redis(() => this.results.get(id))) ?? entry;
        return { status: fromRecord(isFinal(record.state) ? record : entry, this.deps.source), timedOut: false };
      }
    }
    const last = await this.check(id);
    return { status: last, timedOut: !last.final };
  }

  /** The id of the results stream's newest entry, `0-0` while it has none. */
  private async lastEntry(): Promise<string> {
    const newest = await this.deps.redis.xrevrange(this.deps.keys.results, '+', '-', 'COUNT', 1);
    return newest[0]?.[0] ?? '0-0';
  }

  private async redis<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new LookupFailed('redis', `cannot read results from ${this.deps.describe}`, err);
    }
  }
}

/** A results-stream entry's fields (id, state, then the record's fields) as a record. */
function entryRecord(fields: string[]): ResultRecord | undefined {
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) hash[fields[i]!] = fields[i + 1]!;
  return parseResult(hash);
}
