/**
 * The outcome event the results function answers the Broker with when a Job finished: a
 * binary-mode CloudEvent that Knative puts back on the Broker as the Trigger's reply, for users'
 * own Triggers.
 *
 * | attribute        | value                                                          |
 * |------------------|----------------------------------------------------------------|
 * | `type`           | `dev.job-robot.job.succeeded` or `dev.job-robot.job.failed`    |
 * | `id`             | `<Job uid>.<state>`: the same for every redelivery, so receivers can drop repeats |
 * | `source`         | `/job-robot/<namespace>/results`                               |
 * | `subject`        | the Job's name                                                 |
 * | `time`           | when the Job finished, when known                              |
 * | `jobrobotid`, `jobrobotsource` | the queue item's event id and source            |
 * | `jobrobot`       | the instance (INSTANCE, or `job-robot`), as every job-robot event carries |
 *
 * The data is JSON: id, source, job, state, and reason, message, created and finished when known
 * (reason and message cut as the record cuts them).
 */
import { INSTANCE_EXTENSION, JOB_FAILED_TYPE, JOB_SUCCEEDED_TYPE, SPEC_VERSION } from '../events.ts';
import { encodeHeaderValue } from '../http/header-value.ts';
import { updateFields } from '../queue/results.ts';
import type { Recording } from './decide.ts';

export const OUTCOME_TYPES = { succeeded: JOB_SUCCEEDED_TYPE, failed: JOB_FAILED_TYPE } as const;

export type FinishedState = keyof typeof OUTCOME_TYPES;

export interface OutcomeData {
  id: string;
  source: string;
  job: string;
  state: FinishedState;
  reason?: string;
  message?: string;
  created?: string;
  finished?: string;
}

export interface Reply {
  type: string;
  id: string;
  /** The HTTP headers: ce- attributes (encoded per the HTTP binding) and the content type. */
  headers: Record<string, string>;
  data: OutcomeData;
}

/** A record of a finished Job. */
export type FinishedRecording = Recording & { update: { state: FinishedState } };

export const isFinished = (state: string): state is FinishedState => Object.hasOwn(OUTCOME_TYPES, state);

export const isFinishedRecording = (recording: Recording): recording is FinishedRecording => isFinished(recording.update.state);

/** The outcome event for a finished Job's record; `mark` is the instance's `jobrobot` value. */
export function outcomeReply(recording: FinishedRecording, mark: string): Reply {
  const { update, uid, namespace } = recording;
  const fields = new Map<string, string>();
  const pairs = updateFields(update);
  for (let i = 0; i < pairs.length; i += 2) fields.set(pairs[i]!, pairs[i + 1]!);
  const known = (name: 'reason' | 'message' | 'created' | 'finished') => (fields.has(name) ? { [name]: fields.get(name)! } : {});
  const data: OutcomeData = {
    id: update.id,
    source: update.source,
    job: update.job,
    state: update.state,
    ...known('reason'),
    ...known('message'),
    ...known('created'),
    ...known('finished'),
  };
  const type = OUTCOME_TYPES[update.state];
  const id = `${uid}.${update.state}`;
  const attributes: Record<string, string> = {
    specversion: SPEC_VERSION,
    id,
    source: `/job-robot/${namespace}/results`,
    type,
    subject: update.job,
    ...(data.finished ? { time: data.finished } : {}),
    jobrobotid: update.id,
    jobrobotsource: update.source,
    [INSTANCE_EXTENSION]: mark,
  };
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [name, value] of Object.entries(attributes)) headers[`ce-${name}`] = encodeHeaderValue(value);
  return { type, id, headers, data };
}
