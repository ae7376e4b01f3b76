/**
 * The reaper as the results' backstop, for one run. A producer learns what became of its item from
 * the item's result record (function/queue/results.ts); once its Job is deleted, nothing else can
 * tell. So, page by page:
 *
 * - every finished Job of the bridge's queue the run lists has its result read (one round trip for
 *   the page), and where the record is missing or not final, the reaper records it from the Job
 *   (one more): a result lost upstream appears within one run, not only when the Job goes;
 * - an expired Job of the queue is deleted only once its record is final. When Redis cannot answer
 *   or refuses, the Job stays (`result-unrecorded`) and the rest of the run asks no more (one
 *   warning, one timeout), as held-back.ts does for the in-flight check.
 *
 * Jobs without the event annotations, and Jobs of another event source, have no record here: the
 * policy alone decides them. A dry run reads and records nothing.
 */
import type { V1Job } from '@kubernetes/client-node';
import { jobEvent, terminalCondition } from '../kube/job-outcome.ts';
import type { Logger } from '../log.ts';
import { isFinal, type ResultUpdate } from '../queue/results.ts';
import { finishedOutcome, type Decision, type FinishedJob } from './policy.ts';
import { resultOf, type ResultsStore } from './results.ts';
import type { SummaryBuilder } from './summary.ts';

export class Backstop {
  private readonly store: ResultsStore;
  private readonly dryRun: boolean;
  private readonly summary: SummaryBuilder;
  private readonly log: Logger;
  /** This page's finished Jobs of the queue, by event id. */
  private page = new Map<string, ResultUpdate>();
  /** Event ids of this page whose record is final. */
  private final = new Set<string>();
  private unavailable = false;

  constructor(store: ResultsStore, dryRun: boolean, summary: SummaryBuilder, log: Logger) {
    this.store = store;
    this.dryRun = dryRun;
    this.summary = summary;
    this.log = log;
  }

  /** Whether `job`'s result lives in this queue's Redis. */
  applies(job: FinishedJob): boolean {
    return job.event?.source === this.store.source;
  }

  /** Takes note of a listed Job: a finished one of the queue is one whose result this page checks. */
  examine(job: V1Job): void {
    const terminal = terminalCondition(job);
    if (!terminal) return;
    const event = jobEvent(job);
    if (!event) return this.summary.resultWithoutEvent();
    if (event.source !== this.store.source) return this.summary.resultOfOtherSource();
    if (this.dryRun || this.unavailable) return;
    this.page.set(event.id, resultOf(event, finishedOutcome(job, terminal.class)));
  }

  /**
   * Reads the results of the page's finished Jobs and of the Jobs `decided` would delete, and
   * records the missing or non-final ones; afterwards `mayDelete` answers for this page. Never rejects.
   */
  async settle(decided: readonly Decision[]): Promise<void> {
    const pending = this.page;
    this.page = new Map();
    this.final = new Set();
    if (this.dryRun || this.unavailable) return;
    // A Job decided on a later page than its own (pushed out of the keep-newest heap) is not in the page.
    for (const d of decided) {
      if (d.action === 'delete' && this.applies(d.job) && d.job.outcome && !pending.has(d.job.event!.id)) {
        pending.set(d.job.event!.id, resultOf(d.job.event!, d.job.outcome));
      }
    }
    if (!pending.size) return;
    const ids = [...pending.keys()];
    try {
      const records = await this.store.getMany(ids);
      const missing: ResultUpdate[] = [];
      ids.forEach((id, i) => {
        const record = records[i];
        if (record && isFinal(record.state)) this.final.add(id);
        else missing.push(pending.get(id)!);
      });
      if (!missing.length) return;
      const changed = await this.store.record(missing);
      let recorded = 0;
      missing.forEach((update, i) => {
        // Recorded, or already final when the script ran (someone else got there first): final either way.
        this.final.add(update.id);
        if (!changed[i]) return;
        recorded++;
        this.summary.resultRecorded(update.state as 'succeeded' | 'failed');
      });
      if (recorded) this.log.info({ recorded, checked: ids.length }, 'recorded results the queue did not have');
    } catch (err) {
      this.unavailable = true;
      this.summary.resultsUnavailable();
      this.log.warn(
        { results: this.store.describe, err: (err as Error).message },
        "cannot read or record results; this run keeps the queue's expired Jobs whose result is not final",
      );
    }
  }

  /** After `settle`: whether an expired Job may go; false only for a Job of the queue whose record is not final. */
  mayDelete(job: FinishedJob): boolean {
    if (this.dryRun || !this.applies(job)) return true;
    return this.final.has(job.event!.id);
  }
}
