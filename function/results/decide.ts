/**
 * The results function's whole decision, pure: what one ApiServerSource event about a Job means
 * for the item the Job was made for.
 *
 * | the object                                              | decision                                   |
 * |---------------------------------------------------------|--------------------------------------------|
 * | not a batch/v1 Job                                      | ignore (`not-a-job`)                       |
 * | a Job without the managed-by label                      | ignore (`not-owned`)                       |
 * | a Job of another instance (kube/labels.ts ownerSelector) | ignore (`other-instance`)                 |
 * | a Job without the event id and source annotations       | ignore (`no-event`)                        |
 * | added or updated, running                               | record `created`                           |
 * | added or updated, Complete or Failed                    | record `succeeded` or `failed`, and reply  |
 * | deleted, Complete or Failed                             | record `succeeded` or `failed`             |
 * | deleted before it finished                              | record `failed`, reason `Deleted`, finished at its deletionTimestamp when it has one |
 *
 * A reply is wanted for a finished Job's add or update only: whether it is sent depends on the
 * record being final in the Job's own state afterwards (./app.ts). A delete never replies: the
 * reaper deletes Jobs that finished long ago, whose outcome was announced when they finished.
 */
import type { V1Job } from '@kubernetes/client-node';
import { jobEvent, jobOutcome, timeOf, type JobOutcome } from '../kube/job-outcome.ts';
import { INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../kube/labels.ts';
import type { ResultUpdate } from '../queue/results.ts';
import type { Change, Watched } from './job-event.ts';

export type IgnoreReason = 'not-a-job' | 'not-owned' | 'other-instance' | 'no-event';

/** The reason a Job deleted before it finished is recorded with. */
export const DELETED_REASON = 'Deleted';

export type RecordedState = JobOutcome['state'];

export interface Ignore {
  action: 'ignore';
  reason: IgnoreReason;
  /** In words, for the log. */
  detail: string;
}

export interface Recording {
  action: 'record';
  update: ResultUpdate & { state: RecordedState; source: string; job: string };
  /** The Job, for the reply's id and source. */
  uid: string;
  namespace: string;
  /** Answer with the outcome event if the record is final in `update.state` afterwards. */
  reply: boolean;
}

export type Decision = Ignore | Recording;

const ignore = (reason: IgnoreReason, detail: string): Ignore => ({ action: 'ignore', reason, detail });

/** Why the Job is not this instance's (ownerSelector's semantics), or undefined when it is. */
function notOwned(job: V1Job, instance: string | undefined): Ignore | undefined {
  const labels = job.metadata?.labels ?? {};
  if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) return ignore('not-owned', `the Job has no ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE} label`);
  const theirs = labels[INSTANCE_LABEL];
  if (theirs === instance) return undefined;
  if (theirs === undefined) return ignore('other-instance', `the Job has no ${INSTANCE_LABEL} label: it belongs to the job-robot without INSTANCE, not to ${instance}`);
  return ignore('other-instance', `the Job belongs to job-robot instance ${theirs}${instance ? `, not ${instance}` : ' (this one has no INSTANCE)'}`);
}

/** What the event means for the Job's item; `instance` is this job-robot's INSTANCE. */
export function decide(change: Change, watched: Watched, instance: string | undefined): Decision {
  if (watched.kind !== 'job') return ignore('not-a-job', `the object is a ${watched.what}, not a batch/v1 Job`);
  const { job } = watched;
  const foreign = notOwned(job, instance);
  if (foreign) return foreign;
  const event = jobEvent(job);
  if (!event) return ignore('no-event', 'the Job carries no event id and source annotations: the launcher did not make it for a queue item');

  const outcome = jobOutcome(job);
  const unfinishedDelete = change === 'delete' && outcome.state === 'created';
  const update = {
    id: event.id,
    source: event.source,
    job: outcome.job,
    created: outcome.created,
    ...(unfinishedDelete
      ? {
          state: 'failed' as const,
          finished: timeOf(job.metadata?.deletionTimestamp),
          reason: DELETED_REASON,
          message: `the Job ${outcome.job} was deleted before it finished`,
        }
      : { state: outcome.state, finished: outcome.finished, reason: outcome.reason, message: outcome.message }),
  };
  return {
    action: 'record',
    update,
    uid: job.metadata!.uid!,
    namespace: job.metadata!.namespace!,
    reply: change !== 'delete' && outcome.state !== 'created',
  };
}
