/**
 * One run's use of the in-flight check: which expired Jobs it applies to, and why each of those is
 * kept. Once Redis fails to answer in a run, the rest of that run's Jobs from the queue are kept
 * without asking (one warning, not one per Job, and no timeout per Job).
 */
import type { Logger } from '../log.ts';
import type { InFlightCheck } from './in-flight.ts';
import type { FinishedJob, KeepReason } from './policy.ts';

export class HeldBack {
  private readonly check: InFlightCheck | undefined;
  private readonly log: Logger;
  private unavailable = false;

  constructor(check: InFlightCheck | undefined, log: Logger) {
    this.check = check;
    this.log = log;
  }

  /** Whether `job` came from the checked queue. */
  applies(job: FinishedJob): boolean {
    return this.check !== undefined && job.event?.source === this.check.source;
  }

  /** Why `job` stays despite having expired, or undefined when it may go (always, when the check does not apply). Never rejects. */
  async reason(job: FinishedJob): Promise<KeepReason | undefined> {
    if (!this.check || !job.event || !this.applies(job)) return undefined;
    if (this.unavailable) return 'in-flight-unknown';
    try {
      if (!(await this.check.isInFlight(job.event.id))) return undefined;
      this.log.debug({ job: job.name, eventId: job.event.id }, 'kept: its queue item is still in flight');
      return 'in-flight';
    } catch (err) {
      if (!this.unavailable) {
        this.log.warn(
          { queue: this.check.describe, err: (err as Error).message },
          "cannot tell whether queue items are still in flight; this run keeps their expired Jobs",
        );
      }
      this.unavailable = true;
      return 'in-flight-unknown';
    }
  }
}
