/** The reaper's Prometheus metrics: runs, deletions, errors, duration (and what it examined, kept and recorded). */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { HttpError } from '../http/errors.ts';
import type { ReapSummary } from './summary.ts';

export type RunOutcome = 'ok' | 'partial' | 'failed';

export class ReaperMetrics {
  private readonly runs: Counter<'outcome' | 'dry_run'>;
  private readonly deleted: Counter<'class'>;
  private readonly errors: Counter<'stage' | 'reason'>;
  private readonly duration: Histogram<'outcome'>;
  private readonly examined: Counter;
  private readonly kept: Counter<'reason'>;
  private readonly recorded: Counter<'state'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.runs = new Counter({
      name: 'job_robot_reaper_runs_total',
      help: 'Reaper runs by outcome: ok, partial (some Jobs could not be deleted, or interrupted), failed (the run stopped)',
      labelNames: ['outcome', 'dry_run'],
      registers,
    });
    this.deleted = new Counter({ name: 'job_robot_reaper_jobs_deleted_total', help: 'Jobs the reaper deleted, by class', labelNames: ['class'], registers });
    this.errors = new Counter({
      name: 'job_robot_reaper_errors_total',
      help: 'Reaper errors: stage "delete" for one Job that could not be deleted, "run" for a run that stopped',
      labelNames: ['stage', 'reason'],
      registers,
    });
    this.duration = new Histogram({
      name: 'job_robot_reaper_run_duration_seconds',
      help: 'Duration of reaper runs',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.examined = new Counter({ name: 'job_robot_reaper_jobs_examined_total', help: 'Jobs the reaper listed and judged', registers });
    this.kept = new Counter({ name: 'job_robot_reaper_jobs_kept_total', help: 'Jobs the reaper left in place, by reason', labelNames: ['reason'], registers });
    this.recorded = new Counter({
      name: 'job_robot_reaper_results_recorded_total',
      help: "Results the reaper recorded from finished Jobs because the queue's Redis did not have them final, by state",
      labelNames: ['state'],
      registers,
    });
  }

  /** Records a run that finished (possibly with per-Job errors). */
  completed(summary: ReapSummary): RunOutcome {
    const outcome: RunOutcome = summary.errors > 0 || summary.interrupted ? 'partial' : 'ok';
    this.runs.inc({ outcome, dry_run: String(summary.dryRun) });
    this.duration.observe({ outcome }, summary.durationMs / 1000);
    this.examined.inc(summary.examined);
    for (const [cls, n] of Object.entries(summary.deletedByClass)) if (n) this.deleted.inc({ class: cls }, n);
    for (const [reason, n] of Object.entries(summary.kept)) if (n) this.kept.inc({ reason }, n);
    for (const [state, n] of Object.entries(summary.results?.recorded ?? {})) if (n) this.recorded.inc({ state }, n);
    for (const f of summary.failures) this.errors.inc({ stage: 'delete', reason: f.reason });
    // failures beyond the listed ones still count
    const unlisted = summary.errors - summary.failures.length;
    if (unlisted > 0) this.errors.inc({ stage: 'delete', reason: 'unlisted' }, unlisted);
    return outcome;
  }

  /** Records a run that stopped with `err`. */
  failed(err: HttpError, seconds: number, dryRun: boolean): void {
    this.runs.inc({ outcome: 'failed', dry_run: String(dryRun) });
    this.duration.observe({ outcome: 'failed' }, seconds);
    this.errors.inc({ stage: 'run', reason: err.reason });
  }
}
