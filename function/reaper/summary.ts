/** What one reaper run did, as the JSON answer, the CLI output and the source of the metrics. */
import { KEEP_REASONS, type Decision, type FinishedJob, type JobClass, type KeepReason } from './policy.ts';

/** At most this many per-Job failures, and (dry run) Jobs that would be deleted, are listed; counts are always complete. */
export const MAX_LISTED = 1000;

export interface JobFailure {
  job: string;
  code: number;
  reason: string;
  message: string;
}

export interface WouldDelete {
  job: string;
  class: JobClass;
  finishedAt: string;
}

/** With the bridge's Redis: what the results backstop did (backstop.ts). */
export interface ResultsSummary {
  /** Results this run recorded (moved to a final state) from the Jobs, by state: missing or not final in Redis before. */
  recorded: Record<JobClass, number>;
  /** Finished Jobs without the event annotations: no result to record; the policy alone decides them. */
  withoutEvent: number;
  /** Finished Jobs of another event source than the bridge's queue: their results are not this queue's. */
  otherSource: number;
  /** Redis did not answer or refused: the run recorded no more results and kept the queue's expired Jobs (`kept['result-unrecorded']`). */
  unavailable: boolean;
}

export interface ReapSummary {
  namespace: string;
  selector: string;
  dryRun: boolean;
  /** The clock the policy aged Jobs against. */
  now: string;
  /** Jobs listed under the selector. */
  examined: number;
  /** Past retention: deleted, already gone, failed, or (dry run) would be deleted. */
  expired: number;
  /** Deleted by this run. */
  deleted: number;
  /** Gone before this run's delete landed (404), or replaced by a new Job under the same name (uid precondition, 409). */
  alreadyGone: number;
  deletedByClass: Record<JobClass, number>;
  kept: Record<KeepReason, number>;
  errors: number;
  failures: JobFailure[];
  /** With the bridge's Redis only. A dry run reads and records no results. */
  results?: ResultsSummary;
  /** Dry run only: what a real run would delete (first MAX_LISTED). */
  wouldDelete?: WouldDelete[];
  /** The run stopped early (shutdown); counts cover what it did. */
  interrupted: boolean;
  durationMs: number;
}

export class SummaryBuilder {
  private readonly s: ReapSummary;

  constructor(base: { namespace: string; selector: string; dryRun: boolean; now: Date; results?: boolean }) {
    this.s = {
      namespace: base.namespace,
      selector: base.selector,
      dryRun: base.dryRun,
      now: base.now.toISOString(),
      examined: 0,
      expired: 0,
      deleted: 0,
      alreadyGone: 0,
      deletedByClass: { succeeded: 0, failed: 0 },
      kept: Object.fromEntries(KEEP_REASONS.map((r) => [r, 0])) as Record<KeepReason, number>,
      errors: 0,
      failures: [],
      ...(base.results ? { results: { recorded: { succeeded: 0, failed: 0 }, withoutEvent: 0, otherSource: 0, unavailable: false } } : {}),
      ...(base.dryRun ? { wouldDelete: [] } : {}),
      interrupted: false,
      durationMs: 0,
    };
  }

  examined(): void {
    this.s.examined++;
  }

  decided(d: Decision): void {
    if (d.action === 'keep') {
      this.s.kept[d.reason]++;
      return;
    }
    this.s.expired++;
    if (this.s.wouldDelete && this.s.wouldDelete.length < MAX_LISTED) {
      this.s.wouldDelete.push({ job: d.job.name, class: d.job.class, finishedAt: new Date(d.job.finishedAt).toISOString() });
    }
  }

  deleted(job: FinishedJob): void {
    this.s.deleted++;
    this.s.deletedByClass[job.class]++;
  }

  alreadyGone(): void {
    this.s.alreadyGone++;
  }

  failed(failure: JobFailure): void {
    this.s.errors++;
    if (this.s.failures.length < MAX_LISTED) this.s.failures.push(failure);
  }

  resultRecorded(state: JobClass): void {
    if (this.s.results) this.s.results.recorded[state]++;
  }

  resultWithoutEvent(): void {
    if (this.s.results) this.s.results.withoutEvent++;
  }

  resultOfOtherSource(): void {
    if (this.s.results) this.s.results.otherSource++;
  }

  resultsUnavailable(): void {
    if (this.s.results) this.s.results.unavailable = true;
  }

  interrupted(): void {
    this.s.interrupted = true;
  }

  build(durationMs: number): ReapSummary {
    return { ...this.s, durationMs: Math.round(durationMs) };
  }
}
