/**
 * What became of a Job, read from its status the way the job controller writes it: the ground
 * floor under the reaper's retention classes and the results the results function and the reaper
 * record (function/queue/results.ts).
 */
import type { V1Job, V1JobCondition } from '@kubernetes/client-node';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION } from './labels.ts';

export type JobClass = 'succeeded' | 'failed';

/**
 * The True terminal condition of a finished Job: Failed or Complete. Failed wins if both were ever
 * True (the job controller never sets both; Failed is the safer reading). FailureTarget and
 * SuccessCriteriaMet only precede these while the pods terminate, so they do not count.
 */
export function terminalCondition(job: V1Job): { class: JobClass; condition: V1JobCondition } | undefined {
  const conditions = job.status?.conditions ?? [];
  const found = (type: string) => conditions.find((c) => c.type === type && c.status === 'True');
  const failed = found('Failed');
  if (failed) return { class: 'failed', condition: failed };
  const complete = found('Complete');
  return complete ? { class: 'succeeded', condition: complete } : undefined;
}

/** A time from the API (a Date, or an RFC 3339 string), or undefined when absent or unreadable. */
export function timeOf(value: Date | string | undefined | null): Date | undefined {
  if (value === undefined || value === null) return undefined;
  const date = new Date(value);
  return Number.isFinite(date.getTime()) ? date : undefined;
}

/** A Job's outcome as a result: created while it runs; succeeded or failed, with why and when, once it ends. */
export interface JobOutcome {
  state: 'created' | JobClass;
  job: string;
  created?: Date | undefined;
  finished?: Date | undefined;
  reason?: string | undefined;
  message?: string | undefined;
}

export function jobOutcome(job: V1Job): JobOutcome {
  const name = job.metadata?.name ?? '';
  const created = timeOf(job.metadata?.creationTimestamp);
  const terminal = terminalCondition(job);
  if (!terminal) return { state: 'created', job: name, created };
  const { condition } = terminal;
  const finished = timeOf(condition.lastTransitionTime) ?? timeOf(job.status?.completionTime);
  return {
    state: terminal.class,
    job: name,
    created,
    finished,
    reason: condition.reason ?? (terminal.class === 'succeeded' ? 'Completed' : undefined),
    message: condition.message,
  };
}

/** The event a Job was made for: the id and source the launcher wrote into its annotations. */
export function jobEvent(job: V1Job): { id: string; source: string } | undefined {
  const annotations = job.metadata?.annotations ?? {};
  const id = annotations[EVENT_ID_ANNOTATION];
  const source = annotations[EVENT_SOURCE_ANNOTATION];
  return id && source ? { id, source } : undefined;
}
