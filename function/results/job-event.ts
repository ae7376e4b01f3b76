/**
 * One event of a Knative ApiServerSource in Resource mode, read for the results function. The
 * adapter (knative.dev/eventing pkg/adapter/apiserver/events, makeEvent) sends, for each change a
 * watch reports: type `dev.knative.apiserver.resource.add`, `.update` or `.delete`; source the API
 * server's address; subject the object's path; extensions kind, apiversion, name and namespace; a
 * new random id each time; and as data (`application/json`) the whole object as the watch gave it.
 *
 * Only the data decides: the extensions are copies of it. A batch/v1 Job is checked for the
 * fields the results function reads (./decide.ts); any other object is returned by its kind, to be
 * ignored. What cannot be such an event is an InvalidEvent (400: a redelivery cannot mend it).
 */
import type { V1Job } from '@kubernetes/client-node';
import { z } from 'zod';
import { APISERVER_ADD_TYPE, APISERVER_DELETE_TYPE, APISERVER_UPDATE_TYPE } from '../events.ts';
import type { Incoming } from '../http/cloudevent.ts';
import { InvalidEvent } from '../http/errors.ts';

export type Change = 'add' | 'update' | 'delete';

const CHANGES: Readonly<Record<string, Change>> = {
  [APISERVER_ADD_TYPE]: 'add',
  [APISERVER_UPDATE_TYPE]: 'update',
  [APISERVER_DELETE_TYPE]: 'delete',
};

/** The object an event carries: a Job job-robot can read, or something else, named by its kind. */
export type Watched = { kind: 'job'; job: V1Job } | { kind: 'other'; what: string };

export interface JobChange {
  change: Change;
  watched: Watched;
}

const text = z.string().nullish();
const labels = z.record(z.string(), z.string()).nullish();

const condition = z.object({ type: z.string(), status: z.string(), reason: text, message: text, lastTransitionTime: text });

/**
 * The parts of a Job the results function reads. Times stay RFC 3339 strings, as the API sends
 * them: kube/job-outcome.ts reads strings and Dates alike.
 */
const jobShape = z.object({
  metadata: z.object({
    name: z.string().min(1),
    namespace: z.string().min(1),
    uid: z.string().min(1),
    creationTimestamp: text,
    deletionTimestamp: text,
    labels,
    annotations: labels,
  }),
  status: z.object({ conditions: z.array(condition).nullish(), completionTime: text }).nullish(),
});

/** What the object is, as `apiVersion/kind`, or undefined when it says neither. */
function kindOf(object: Record<string, unknown>): string | undefined {
  const { apiVersion, kind } = object;
  return typeof apiVersion === 'string' && typeof kind === 'string' ? `${apiVersion}/${kind}` : undefined;
}

/** The object as a Job, or an InvalidEvent naming the first field that is not what the API sends. */
function jobOf(object: Record<string, unknown>): V1Job {
  const parsed = jobShape.safeParse(object);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidEvent(`the Job in the event is malformed: ${issue.path.join('.') || '(object)'}: ${issue.message}`, 'invalid-job', { path: issue.path.map(String) });
  }
  // The fields read are checked above; the rest of V1Job stays unread.
  return { apiVersion: 'batch/v1', kind: 'Job', ...parsed.data } as unknown as V1Job;
}

/** The change and the object `event` reports; throws InvalidEvent for anything else. */
export function readJobChange(event: Incoming): JobChange {
  const change = CHANGES[event.type];
  if (!change) {
    throw new InvalidEvent(`the results function reads ApiServerSource resource events (${Object.keys(CHANGES).join(', ')}), not ${event.type}`, 'unexpected-type', { type: event.type });
  }
  const data = event.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data) || Buffer.isBuffer(data) || data instanceof Uint8Array) {
    throw new InvalidEvent('the event data must be a Kubernetes object as JSON (an ApiServerSource in Resource mode sends the whole object)', 'invalid-data');
  }
  const object = data as Record<string, unknown>;
  const what = kindOf(object);
  if (!what) throw new InvalidEvent('the event data is not a Kubernetes object: it names no apiVersion and kind', 'invalid-data');
  return { change, watched: what === 'batch/v1/Job' ? { kind: 'job', job: jobOf(object) } : { kind: 'other', what } };
}
