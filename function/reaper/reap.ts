/**
 * One reaper run: list job-robot's Jobs page by page, triage them as they stream past, and delete
 * the expired ones with bounded concurrency. With the bridge's Redis, each page's results are
 * checked (and recorded where missing) before any of its Jobs is deleted (backstop.ts). Memory
 * holds one page, the in-flight deletions and the keep-newest heaps, whatever the namespace holds.
 */
import type { V1Job } from '@kubernetes/client-node';
import { kubeFailure, refusalStatus } from '../kube/api-error.ts';
import { failureClass, isMisconfiguration } from '../kube/failures.ts';
import type { JobList } from '../kube/jobs-api.ts';
import { ownerSelector } from '../kube/labels.ts';
import { DELETE_JOBS, LIST_JOBS } from '../kube/permissions.ts';
import { createLogger, type Logger } from '../log.ts';
import { Backstop } from './backstop.ts';
import { runFailure } from './errors.ts';
import { HeldBack } from './held-back.ts';
import type { InFlightCheck } from './in-flight.ts';
import { Limiter } from '../async/limiter.ts';
import { Triage, type Decision, type FinishedJob, type KeepReason, type Policy } from './policy.ts';
import type { ResultsStore } from './results.ts';
import { DEFAULT_RETRY, withRetry, type RetryOptions } from './retry.ts';
import { SummaryBuilder, type ReapSummary } from './summary.ts';

/** One page of the reaper's Jobs: its selector, its size, and the token of the page before. */
export type JobsPage = { labelSelector: string; limit: number; continue?: string };

/** How the reaper deletes a Job: its pods with it, and only the Job it listed. */
export type JobDeletion = { propagationPolicy: 'Background'; preconditions: { uid: string } };

/**
 * The two calls the reaper makes. kube/jobs-api.ts's restJobs makes them over KubeRest (whose
 * deadline bounds each call); tests may wrap it.
 */
export interface JobsApi {
  listJobs(namespace: string, page: JobsPage): Promise<JobList>;
  deleteJob(namespace: string, name: string, body: JobDeletion): Promise<void>;
}

export interface ReaperOptions {
  namespace: string;
  /** Selects the instance label too when set; see ownerSelector. */
  instance?: string;
  policy: Policy;
  concurrency: number;
  pageSize: number;
  dryRun?: boolean;
  /** The clock; read once per run. */
  now?: () => Date;
  retry?: RetryOptions;
  /** Keeps expired Jobs whose queue item the bridge may still deliver again (see in-flight.ts). */
  inFlight?: InFlightCheck;
  /** The bridge's results: a Job of its queue goes only once its result is final there (see backstop.ts). */
  results?: ResultsStore;
  log?: Logger;
}

export interface RunOptions {
  /** Overrides the configured dry run. */
  dryRun?: boolean;
  /** Aborting stops listing and scheduling; deletions in flight finish; the summary says `interrupted`. */
  signal?: AbortSignal;
  /** Sees every decision as it is made (the CLI prints them). */
  onDecision?: (decision: Decision) => void;
  /** A logger for this run (for example a child carrying the event id). */
  log?: Logger;
  /** Awaited once a page's Jobs are decided and their deletions started, before the next page is listed; `listed` counts the pages so far. */
  beforeNextPage?: (listed: number) => void | Promise<void>;
}

export class Reaper {
  readonly namespace: string;
  readonly selector: string;
  /** Whether runs only report, unless a run says otherwise. */
  readonly dryRun: boolean;
  private readonly api: JobsApi;
  private readonly options: ReaperOptions;
  private readonly now: () => Date;
  private readonly log: Logger;

  constructor(api: JobsApi, options: ReaperOptions) {
    this.api = api;
    this.options = options;
    this.namespace = options.namespace;
    this.selector = ownerSelector(options.instance);
    this.dryRun = options.dryRun ?? false;
    this.now = options.now ?? (() => new Date());
    this.log = options.log ?? createLogger('silent');
    for (const [name, value] of [['concurrency', options.concurrency], ['pageSize', options.pageSize]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }

  /**
   * Runs once. Resolves with the summary, per-Job failures included; rejects with an HttpError
   * when the run as a whole cannot proceed (403 with the fix, API server away).
   */
  async run(opts: RunOptions = {}): Promise<ReapSummary> {
    const started = performance.now();
    const now = this.now();
    const dryRun = opts.dryRun ?? this.dryRun;
    const log = (opts.log ?? this.log).child({ namespace: this.namespace, dryRun });
    const summary = new SummaryBuilder({ namespace: this.namespace, selector: this.selector, dryRun, now, results: this.options.results !== undefined });
    const triage = new Triage(this.options.policy, now.getTime());
    const limiter = new Limiter(this.options.concurrency);
    let fatal: unknown;

    const record = (d: Decision): void => {
      summary.decided(d);
      opts.onDecision?.(d);
    };
    const held = new HeldBack(this.options.inFlight, log);
    const results = this.options.results ? new Backstop(this.options.results, dryRun, summary, log) : undefined;
    const act = async (d: Decision): Promise<void> => {
      if (d.action === 'keep') return record(d);
      // Scheduling stops with an abort; the Jobs of the page not yet acted on are left for the next run.
      if (opts.signal?.aborted) return;
      if (results && !results.mayDelete(d.job)) return record(keep(d.job, 'result-unrecorded'));
      if (!held.applies(d.job) && (dryRun || fatal)) return record(d);
      // A question to Redis takes a slot like a delete, so a page of them runs `concurrency` at a time.
      await limiter.run(async () => {
        const kept = await held.reason(d.job);
        record(kept ? keep(d.job, kept) : d);
        if (kept || dryRun || fatal) return;
        await this.delete(d.job, summary, log).catch((err: unknown) => {
          fatal ??= err;
        });
      });
    };
    const stopping = () => fatal !== undefined || (opts.signal?.aborted ?? false);

    try {
      pages: for await (const page of this.pages(log, opts.beforeNextPage)) {
        // The page is decided first, so its results are read and recorded in one round trip each.
        const decided: Decision[] = [];
        for (const job of page) {
          if (stopping()) break;
          summary.examined();
          results?.examine(job);
          decided.push(...triage.offer(job));
        }
        await results?.settle(decided);
        for (const d of decided) await act(d);
        if (stopping()) break pages;
      }
      if (!stopping()) for (const d of triage.finish()) await act(d);
    } catch (err) {
      fatal ??= err;
    } finally {
      await limiter.drain();
    }
    if (fatal) throw fatal;
    if (opts.signal?.aborted) summary.interrupted();
    return summary.build(performance.now() - started);
  }

  /** Pages of Jobs under the selector, `limit` at a time, following `continue`. */
  private async *pages(log: Logger, beforeNextPage?: RunOptions['beforeNextPage']): AsyncGenerator<V1Job[]> {
    let token: string | undefined;
    let listed = 0;
    do {
      const page: JobsPage = { labelSelector: this.selector, limit: this.options.pageSize, ...(token ? { continue: token } : {}) };
      let list: JobList;
      try {
        list = await withRetry(() => this.api.listJobs(this.namespace, page), this.options.retry ?? DEFAULT_RETRY);
      } catch (err) {
        const fresh = token ? continueAfterExpiry(err) : undefined;
        if (!fresh) throw runFailure(err, this.namespace, LIST_JOBS);
        // The snapshot the token pinned was compacted away (a very long run): the server offers a
        // token that resumes after the last key on a newer snapshot. Nothing is seen twice.
        log.info('list continuation expired; resuming on a newer snapshot');
        token = fresh;
        continue;
      }
      listed++;
      yield list.items;
      token = list.metadata?.continue || undefined;
      if (token) await beforeNextPage?.(listed);
    } while (token);
  }

  /** Deletes one expired Job; 404 and 409 mean someone got there first. Throws only for 403 or 401 (the run stops). */
  private async delete(job: FinishedJob, summary: SummaryBuilder, log: Logger): Promise<void> {
    try {
      // Both in the body: the API server ignores the query parameters once a body is sent.
      const body: JobDeletion = {
        // A plain delete of a batch/v1 Job orphans its pods; Background lets the garbage collector take them.
        propagationPolicy: 'Background',
        // Only the Job that was listed: one recreated under the same name has a new uid, and the server answers 409.
        preconditions: { uid: job.uid },
      };
      await withRetry(() => this.api.deleteJob(this.namespace, job.name, body), this.options.retry ?? DEFAULT_RETRY);
      summary.deleted(job);
      log.debug({ job: job.name, class: job.class }, 'deleted');
    } catch (err) {
      const f = kubeFailure(err);
      const cls = failureClass(f);
      if (cls === 'not-found' || cls === 'conflict') {
        summary.alreadyGone();
        log.debug({ job: job.name, code: f.code }, 'already gone');
        return;
      }
      if (isMisconfiguration(f)) throw runFailure(err, this.namespace, DELETE_JOBS);
      const reason = f.reason || (f.code ? `http-${f.code}` : 'unknown');
      summary.failed({ job: job.name, code: f.code, reason, message: f.message });
      log.warn({ job: job.name, code: f.code, reason }, `cannot delete Job: ${f.message}`);
    }
  }
}

const keep = (job: FinishedJob, reason: KeepReason): Decision => ({ action: 'keep', job: { name: job.name, uid: job.uid }, reason, class: job.class });

/** The resume token a 410 Expired answer to a continued list carries, if any (kube/api-error.ts reads the refusal). */
export function continueAfterExpiry(err: unknown): string | undefined {
  const refused = refusalStatus(err);
  if (refused?.code !== 410) return undefined;
  const token = refused.status.metadata?.continue;
  return typeof token === 'string' && token ? token : undefined;
}
