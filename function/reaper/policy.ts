/**
 * The reaper's whole decision, pure: which of job-robot's Jobs to delete and why the others stay.
 * No I/O and no clock of its own; `now` comes in, so ages are testable without waiting.
 */
import type { V1Job } from '@kubernetes/client-node';
import { jobEvent, jobOutcome, terminalCondition, timeOf, type JobClass, type JobOutcome } from '../kube/job-outcome.ts';
import { MAX_MESSAGE_CHARS, MAX_REASON_CHARS } from '../queue/results.ts';

export type { JobClass };

/** How long a finished Job of one class stays, and how many of the newest always stay. */
export interface Retention {
  maxAgeMs: number;
  keep: number;
}

export type Policy = Record<JobClass, Retention>;

/** Why a Job stays. Every examined Job that is not deleted is counted under exactly one. */
export const KEEP_REASONS = [
  'running',
  'suspended',
  'deleting',
  'no-finish-time',
  'within-max-age',
  'newest',
  'in-flight',
  'in-flight-unknown',
  /** Expired, but its result is not final in Redis and could not be recorded this run (see backstop.ts). */
  'result-unrecorded',
] as const;
export type KeepReason = (typeof KEEP_REASONS)[number];

/** What the reaper needs of a Job after deciding: small, so thousands cost little memory. */
export interface JobRef {
  name: string;
  uid: string;
}

export interface FinishedJob extends JobRef {
  class: JobClass;
  /** Epoch milliseconds of the Complete/Failed condition's lastTransitionTime. */
  finishedAt: number;
  /** The event the Job was made for (its annotations), when it carries both. */
  event?: EventRef;
  /** With `event`: what became of the Job, for its result record, reason and message cut to what a record keeps. */
  outcome?: FinishedOutcome;
}

/** A finished Job's outcome (kube/job-outcome.ts). */
export type FinishedOutcome = JobOutcome & { state: JobClass };

/** A CloudEvent's identity: id and source. */
export interface EventRef {
  id: string;
  source: string;
}

export type Decision =
  | { action: 'delete'; job: FinishedJob; reason: 'expired' }
  | { action: 'keep'; job: JobRef; reason: KeepReason; class?: JobClass };

/** Whether a Job has finished, as what and when; else why it is not (yet) one the reaper may judge by age. */
export type FinishState =
  | { state: 'running' | 'suspended' | 'deleting' | 'no-finish-time'; class?: JobClass }
  | { state: 'finished'; class: JobClass; finishedAt: number };

/**
 * Whether a Job has finished. Being deleted wins over everything; then a True Complete or Failed condition
 * (finished, whatever spec.suspend says: the job controller never resumes a finished Job); then
 * spec.suspend; anything else is still running (including FailureTarget/SuccessCriteriaMet, which
 * precede the terminal condition while pods terminate).
 */
export function finishState(job: V1Job): FinishState {
  if (job.metadata?.deletionTimestamp) return { state: 'deleting' };
  const terminal = terminalCondition(job);
  if (terminal) {
    const cls = terminal.class;
    const finished = timeOf(terminal.condition.lastTransitionTime) ?? (cls === 'succeeded' ? timeOf(job.status?.completionTime) : undefined);
    return finished === undefined ? { state: 'no-finish-time', class: cls } : { state: 'finished', class: cls, finishedAt: finished.getTime() };
  }
  if (job.spec?.suspend) return { state: 'suspended' };
  return { state: 'running' };
}

/** Past its class's maximum age at `now`. A finish time in the future (clock skew) is not. */
export const isExpired = (finishedAt: number, retention: Retention, now: number): boolean => now - finishedAt >= retention.maxAgeMs;

/** Newer first: later finish time, then (same second) the greater name, so ties order the same every run. */
export const newer = (a: FinishedJob, b: FinishedJob): boolean =>
  a.finishedAt !== b.finishedAt ? a.finishedAt > b.finishedAt : a.name > b.name;

/**
 * The `capacity` newest finished Jobs seen so far, as a min-heap (oldest at the root). Memory is
 * bounded by `capacity` however many Jobs stream past.
 */
export class NewestKept {
  private readonly heap: FinishedJob[] = [];
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Adds `job`; returns the Job that is now certainly not among the newest (`job` itself or the one it displaced), if any. */
  offer(job: FinishedJob): FinishedJob | undefined {
    if (this.capacity === 0) return job;
    if (this.heap.length < this.capacity) {
      this.heap.push(job);
      this.up(this.heap.length - 1);
      return undefined;
    }
    const oldest = this.heap[0]!;
    if (!newer(job, oldest)) return job;
    this.heap[0] = job;
    this.down(0);
    return oldest;
  }

  /** Everything still held: the newest `capacity` Jobs of the stream. */
  drain(): FinishedJob[] {
    return this.heap.splice(0);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!newer(h[parent]!, h[i]!)) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let oldest = i;
      if (l < h.length && newer(h[oldest]!, h[l]!)) oldest = l;
      if (r < h.length && newer(h[oldest]!, h[r]!)) oldest = r;
      if (oldest === i) return;
      [h[oldest], h[i]] = [h[i]!, h[oldest]!];
      i = oldest;
    }
  }
}

/**
 * Streaming triage: feed Jobs one at a time with `offer`, then call `finish` once. Each Job gets
 * exactly one decision, as soon as it is certain: at once for unfinished Jobs and for finished ones
 * that cannot be among their class's newest, at `finish` for the ones that are.
 */
export class Triage {
  private readonly policy: Policy;
  private readonly now: number;
  private readonly newest: Record<JobClass, NewestKept>;

  constructor(policy: Policy, now: number) {
    this.policy = policy;
    this.now = now;
    this.newest = { succeeded: new NewestKept(policy.succeeded.keep), failed: new NewestKept(policy.failed.keep) };
  }

  offer(job: V1Job): Decision[] {
    const ref: JobRef = { name: job.metadata?.name ?? '', uid: job.metadata?.uid ?? '' };
    const s = finishState(job);
    if (s.state !== 'finished') return [{ action: 'keep', job: ref, reason: s.state, ...(s.class ? { class: s.class } : {}) }];
    const event = jobEvent(job);
    const finished: FinishedJob = { ...ref, class: s.class, finishedAt: s.finishedAt, ...(event ? { event, outcome: finishedOutcome(job, s.class) } : {}) };
    const out = this.newest[s.class].offer(finished);
    return out ? [this.byAge(out)] : [];
  }

  finish(): Decision[] {
    return (['succeeded', 'failed'] as const).flatMap((cls) =>
      this.newest[cls].drain().map((job): Decision => {
        const expired = isExpired(job.finishedAt, this.policy[cls], this.now);
        return { action: 'keep', job: ref(job), reason: expired ? 'newest' : 'within-max-age', class: cls };
      }),
    );
  }

  /** The decision for a finished Job known not to be among the newest: its age alone decides. */
  private byAge(job: FinishedJob): Decision {
    return isExpired(job.finishedAt, this.policy[job.class], this.now)
      ? { action: 'delete', job, reason: 'expired' }
      : { action: 'keep', job: ref(job), reason: 'within-max-age', class: job.class };
  }
}

const ref = (job: FinishedJob): JobRef => ({ name: job.name, uid: job.uid });

const cut = (text: string | undefined, max: number): string | undefined => (text !== undefined && text.length > max ? text.slice(0, max) : text);

/**
 * The outcome of a Job that finished as `cls`, bounded: the keep-newest heaps may hold thousands,
 * and a condition's message is free text.
 */
export function finishedOutcome(job: V1Job, cls: JobClass): FinishedOutcome {
  const o = jobOutcome(job);
  return { ...o, state: cls, reason: cut(o.reason, MAX_REASON_CHARS), message: cut(o.message, MAX_MESSAGE_CHARS) };
}
