/**
 * What `job-robot status` knows of one item: from its result record, else from its Job, else
 * nothing. Pure: the reading is in lookup.ts, the printing in render.ts.
 */
import type { V1Job } from '@kubernetes/client-node';
import { jobOutcome } from '../kube/job-outcome.ts';
import { isFinal, type ResultRecord, type ResultState } from '../queue/results.ts';

/** Where the answer came from. */
export type StatusFrom = 'record' | 'job' | 'none';

export interface ItemStatus {
  id: string;
  source: string;
  /** `record`: the result record in Redis; `job`: the Job (no record); `none`: neither exists. */
  from: StatusFrom;
  state: ResultState | 'unknown';
  /** succeeded, failed or dead-lettered: nothing more will happen to the item. */
  final: boolean;
  job?: string;
  /** Where the Job was looked for or found (from `job` and `none`). */
  namespace?: string;
  accepted?: string;
  created?: string;
  finished?: string;
  reason?: string;
  message?: string;
}

/** The status a result record gives (its own source, when it names one). */
export function fromRecord(record: ResultRecord, source: string): ItemStatus {
  const { id, state, ...fields } = record;
  return { id, source: fields.source ?? source, from: 'record', state, final: isFinal(state), ...withoutSource(fields) };
}

/** The status a Job gives, when the item has no record. */
export function fromJob(job: V1Job, id: string, source: string, namespace: string): ItemStatus {
  const o = jobOutcome(job);
  return {
    id,
    source,
    from: 'job',
    state: o.state,
    final: o.state !== 'created',
    job: o.job,
    namespace,
    ...(o.created ? { created: o.created.toISOString() } : {}),
    ...(o.finished ? { finished: o.finished.toISOString() } : {}),
    ...(o.reason ? { reason: o.reason } : {}),
    ...(o.message ? { message: o.message } : {}),
  };
}

/** Neither a record nor a Job. */
export function unknownItem(id: string, source: string, namespace: string): ItemStatus {
  return { id, source, from: 'none', state: 'unknown', final: false, namespace };
}

function withoutSource<T extends { source?: string }>(fields: T): Omit<T, 'source'> {
  const { source: _, ...rest } = fields;
  return rest;
}

/** Exit codes (README): 0 known (with --wait: succeeded), 1 failed or dead-lettered, 2 timed out, 4 unknown. */
export const EXIT = { ok: 0, failed: 1, timedOut: 2, unknown: 4, usage: 64, unavailable: 75, permission: 77 } as const;

/** The exit code for `status`, after a wait or not. */
export function exitCode(status: ItemStatus, waited: boolean): number {
  if (!waited) return status.from === 'none' ? EXIT.unknown : EXIT.ok;
  if (!status.final) return EXIT.timedOut;
  return status.state === 'succeeded' ? EXIT.ok : EXIT.failed;
}
