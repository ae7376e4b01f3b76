/**
 * Back-pressure: the number of active Jobs this launcher owns, against MAX_ACTIVE_JOBS. Counted from
 * one watch of the owned Jobs that starts with their current state (a streaming list, or a
 * paginated list where the API server has none), keeping names and an active flag only, plus the
 * creates in flight or not yet seen by the watch, so concurrent requests cannot overshoot the cap.
 * Several launcher replicas each watch the same Jobs; between them the cap can be exceeded by at
 * most the creates in flight at one moment.
 */
import type { V1Job } from '@kubernetes/client-node';
import { backoffDelay } from '../async/backoff.ts';
import { pause } from '../async/wait.ts';
import { RetryLater } from '../http/errors.ts';
import { kubeFailure, type KubeFailure } from '../kube/api-error.ts';
import { jobsPath, listJobs } from '../kube/jobs-api.ts';
import type { KubeRest } from '../kube/rest.ts';
import { watch, type WatchEvent } from '../kube/watch.ts';
import { failureAnswer, isMisconfiguration } from '../kube/failures.ts';
import { LIST_JOBS, WATCH_JOBS } from '../kube/permissions.ts';
import type { Logger } from '../log.ts';
import { isActive } from './state.ts';

/** A reserved slot; release it with how the create ended. */
export interface Slot {
  release(outcome: 'created' | 'exists' | 'failed'): void;
}

export interface Capacity {
  /**
   * Reserves a slot for Job `name`; throws RetryLater(429) at the cap, RetryLater(503) when the
   * count is not known yet, Misconfigured(500) when the Jobs may not be listed (403, or 401).
   */
  reserve(name: string): Promise<Slot>;
  /** Active owned Jobs as counted against the cap (undefined: no cap). */
  readonly active: number | undefined;
  start(): void;
  stop(): void;
}

const NO_SLOT: Slot = { release: () => undefined };

/** Backoff between failed lists or watches: 0.5-1 s at first, doubling to 15-30 s. */
const WATCH_RETRY = { minMs: 1_000, maxMs: 30_000 };

/** MAX_ACTIVE_JOBS=0: no cap, no watch. */
export class Unlimited implements Capacity {
  readonly active = undefined;
  async reserve(): Promise<Slot> {
    return NO_SLOT;
  }
  start(): void {}
  stop(): void {}
}

export interface ActiveCapOptions {
  rest: KubeRest;
  namespace: string;
  selector: string;
  max: number;
  retryAfterSeconds: number;
  log: Logger;
  /** How long a created Job may stay unseen by the watch before its slot is given up. */
  unseenMs?: number;
  /** How long a request waits for the first sync before answering 503. */
  syncWaitMs?: number;
  pageSize?: number;
}

export class ActiveCap implements Capacity {
  private readonly o: Required<ActiveCapOptions>;
  /** Owned Jobs by name: true while active. */
  private readonly jobs = new Map<string, boolean>();
  private activeCount = 0;
  /** Slots of Jobs being created, or created and not yet seen: name → expiry (Infinity while in flight). */
  private readonly pending = new Map<string, number>();
  private resourceVersion = '';
  private isSynced = false;
  private syncWaiters: Array<() => void> = [];
  private stopped = true;
  private abort: AbortController | undefined;
  /** Aborted by `stop()`: ends the loop's pause. */
  private halt = new AbortController();
  private failure: KubeFailure | undefined;
  /** Whether the API server streams lists (watch with sendInitialEvents); else paginated lists. */
  private streaming = true;
  private resolveSynced!: () => void;
  /** Settles once the first list has been counted. */
  readonly synced: Promise<void> = new Promise((resolve) => (this.resolveSynced = resolve));

  constructor(options: ActiveCapOptions) {
    this.o = { unseenMs: 60_000, syncWaitMs: 5_000, pageSize: 500, ...options };
  }

  get active(): number {
    this.expire();
    let unseen = 0;
    for (const name of this.pending.keys()) if (!this.jobs.has(name)) unseen++;
    return this.activeCount + unseen;
  }

  async reserve(name: string): Promise<Slot> {
    if (!this.isSynced) {
      if (this.failure && isMisconfiguration(this.failure)) {
        const call = { needs: [LIST_JOBS, WATCH_JOBS], namespace: this.o.namespace, orElse: 'set MAX_ACTIVE_JOBS=0 to run without the cap' };
        throw failureAnswer(this.failure, call, this.o.retryAfterSeconds);
      }
      await this.waitForSync();
    }
    // A Job that exists (or is being created) needs no second slot: its create will answer 409.
    if (this.jobs.has(name) || this.pending.has(name)) return NO_SLOT;
    const active = this.active;
    if (active >= this.o.max) {
      throw new RetryLater(
        `${active} active Jobs reach the cap MAX_ACTIVE_JOBS=${this.o.max}; retry later`,
        429,
        this.o.retryAfterSeconds,
        'at-capacity',
      );
    }
    this.pending.set(name, Infinity);
    return {
      release: (outcome) => {
        if (outcome === 'failed') this.pending.delete(name);
        else if (!this.jobs.has(name)) this.pending.set(name, Date.now() + this.o.unseenMs);
        else this.pending.delete(name);
      },
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.halt = new AbortController();
    void this.loop(this.halt.signal);
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    this.halt.abort();
  }

  private waitForSync(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== done);
        reject(new RetryLater('the active-Job count is not known yet (no list of Jobs so far)', 503, this.o.retryAfterSeconds, 'capacity-unknown'));
      }, this.o.syncWaitMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.syncWaiters.push(done);
    });
  }

  private expire(): void {
    const now = Date.now();
    for (const [name, until] of this.pending) if (until < now) this.pending.delete(name);
  }

  private set(job: V1Job): void {
    const name = job.metadata?.name;
    if (!name) return;
    const was = this.jobs.get(name);
    const now = isActive(job);
    this.jobs.set(name, now);
    this.activeCount += Number(now) - Number(was ?? false);
    this.pending.delete(name);
  }

  private remove(name: string | undefined): void {
    if (!name) return;
    if (this.jobs.get(name)) this.activeCount--;
    this.jobs.delete(name);
  }

  /** Replaces the state with a complete set of owned Jobs (from a list, or a watch's initial events). */
  private replace(fresh: Map<string, boolean>, resourceVersion: string): void {
    this.jobs.clear();
    this.activeCount = 0;
    for (const [name, active] of fresh) {
      this.jobs.set(name, active);
      if (active) this.activeCount++;
      this.pending.delete(name);
    }
    this.resourceVersion = resourceVersion;
    if (!this.isSynced) {
      this.isSynced = true;
      this.resolveSynced();
      this.o.log.debug({ active: this.activeCount, owned: this.jobs.size }, 'active Jobs counted');
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  /** Lists the owned Jobs page by page (for API servers without streaming lists). */
  private async relist(): Promise<void> {
    const fresh = new Map<string, boolean>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await listJobs(this.o.rest, this.o.namespace, { labelSelector: this.o.selector, limit: this.o.pageSize, continue: cont });
      for (const job of page.items) if (job.metadata?.name) fresh.set(job.metadata.name, isActive(job));
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    this.replace(fresh, rv);
  }

  /**
   * One watch; resolves when it ends. Without a resourceVersion it is a streaming list
   * (sendInitialEvents): the owned Jobs arrive as ADDED events, then a bookmark marks the end of
   * the initial state. That costs one request and no typed deserialization, where a paginated list
   * of thousands of Jobs costs seconds at cold start.
   */
  private async watchOnce(): Promise<void> {
    const initial = !this.resourceVersion;
    let fresh: Map<string, boolean> | undefined = initial ? new Map() : undefined;
    const query = {
      ...(initial ? { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan' } : { resourceVersion: this.resourceVersion }),
      labelSelector: this.o.selector,
      allowWatchBookmarks: true,
      timeoutSeconds: 300 + Math.floor(Math.random() * 300),
    };
    const onEvent = ({ type, object: obj }: WatchEvent<V1Job & { code?: number }>) => {
      if (type === 'ERROR') {
        if (obj.code === 410) this.resourceVersion = '';
        return;
      }
      const name = obj.metadata?.name;
      const rv = obj.metadata?.resourceVersion ?? '';
      if (type === 'BOOKMARK') {
        if (fresh && obj.metadata?.annotations?.['k8s.io/initial-events-end'] === 'true') {
          this.replace(fresh, rv);
          fresh = undefined;
        } else if (!fresh) this.resourceVersion = rv;
        return;
      }
      if (fresh) {
        if (type === 'DELETED') fresh.delete(name ?? '');
        else if (name) fresh.set(name, isActive(obj));
        return;
      }
      if (type === 'ADDED' || type === 'MODIFIED') this.set(obj);
      else if (type === 'DELETED') this.remove(name);
      if (rv) this.resourceVersion = rv;
    };
    const abort = (this.abort = new AbortController());
    if (this.stopped) abort.abort();
    try {
      await watch(this.o.rest, jobsPath(this.o.namespace), query, onEvent, { signal: abort.signal });
    } catch (err) {
      const code = kubeFailure(err).code;
      if (code === 410) this.resourceVersion = '';
      else if (initial && (code === 400 || code === 422)) {
        // This API server does not stream lists: list page by page from now on.
        this.streaming = false;
      } else throw err;
    } finally {
      this.abort = undefined;
      // A stream that ended before its initial state was complete starts over.
      if (fresh) this.resourceVersion = '';
    }
  }

  private async loop(halt: AbortSignal): Promise<void> {
    let failures = 0;
    while (!halt.aborted) {
      try {
        if (!this.resourceVersion && !this.streaming) await this.relist();
        const started = Date.now();
        const streaming = this.streaming;
        await this.watchOnce();
        if (failures) this.o.log.info('watching Jobs again');
        failures = 0;
        this.failure = undefined;
        // A watch the server ends at once must not become a busy loop.
        if (Date.now() - started < 1000 && streaming === this.streaming) await pause(1000, halt);
      } catch (err) {
        if (halt.aborted) break;
        const f = kubeFailure(err);
        this.failure = f;
        if (!failures) this.o.log.warn({ code: f.code, reason: f.reason }, `cannot list or watch Jobs for the active-Job cap: ${f.message}`);
        failures++;
        // A failed list keeps the last known state; relist from scratch after the pause.
        this.resourceVersion = '';
        await pause(backoffDelay(failures, WATCH_RETRY.minMs, WATCH_RETRY.maxMs), halt);
      }
    }
  }
}
