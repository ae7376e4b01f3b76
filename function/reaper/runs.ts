/**
 * Runs of the reaper inside the function: one at a time. A ping arriving while a run is in flight
 * (a PingSource may deliver twice) joins that run and gets its summary, rather than listing and
 * deleting the same Jobs again. Runs in other pods are safe too: deletions are idempotent.
 */
import { toHttpError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import type { ReaperMetrics } from './metrics.ts';
import type { Reaper } from './reap.ts';
import { isForbiddenRun } from './errors.ts';
import type { ReapSummary } from './summary.ts';

export interface RunsDeps {
  reaper: Reaper;
  metrics: ReaperMetrics;
  log: Logger;
  /** Told when a run is refused with 403, so readiness turns false with the fix. */
  onForbidden?: (fix: string) => void;
  /** Shutdown: the run in flight stops early and answers what it did. */
  signal?: AbortSignal;
}

export class Runs {
  private readonly deps: RunsDeps;
  private current: Promise<ReapSummary> | undefined;

  constructor(deps: RunsDeps) {
    this.deps = deps;
  }

  /** The run in flight, or a new one. Rejects with an HttpError. */
  run(log: Logger = this.deps.log): Promise<ReapSummary> {
    if (this.current) {
      log.debug('a run is already in flight: joining it');
      return this.current;
    }
    this.current = this.once(log).finally(() => {
      this.current = undefined;
    });
    return this.current;
  }

  private async once(log: Logger): Promise<ReapSummary> {
    const { reaper, metrics } = this.deps;
    const started = performance.now();
    try {
      const summary = await reaper.run({ log, ...(this.deps.signal ? { signal: this.deps.signal } : {}) });
      const outcome = metrics.completed(summary);
      const { examined, expired, deleted, alreadyGone, errors, kept, durationMs, dryRun } = summary;
      const fields = { outcome, dryRun, examined, expired, deleted, alreadyGone, errors, kept, ...(summary.results ? { results: summary.results } : {}), durationMs };
      // A run that found nothing to do is debug: with a ping every few seconds, info would be noise.
      const recorded = summary.results ? summary.results.recorded.succeeded + summary.results.recorded.failed : 0;
      const eventful = expired > 0 || kept['in-flight'] > 0 || kept['in-flight-unknown'] > 0 || kept['result-unrecorded'] > 0 || recorded > 0 || summary.interrupted;
      if (errors) log.warn(fields, `reaper run: ${errors} Job(s) could not be deleted`);
      else log[eventful ? 'info' : 'debug'](fields, dryRun ? `reaper dry run: would delete ${expired} Job(s)` : `reaper run: deleted ${deleted} Job(s)`);
      return summary;
    } catch (err) {
      const mapped = toHttpError(err);
      metrics.failed(mapped, (performance.now() - started) / 1000, reaper.dryRun);
      if (isForbiddenRun(mapped)) this.deps.onForbidden?.(mapped.fix);
      throw mapped; // logged once, by the HTTP error handler
    }
  }
}
