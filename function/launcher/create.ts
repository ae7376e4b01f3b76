/**
 * The launcher's decision, whole: an accepted event becomes exactly one Job. The Job's name is the
 * event's identity, so a redelivery's create answers 409 AlreadyExists, which is success once the
 * Job proves to be this launcher's own. A failed create is mapped by kube/failures.ts, but for the
 * answers whose meaning is the create's own: 404 (the namespace) and 400/422 (the event or the template).
 */
import type { V1Job } from '@kubernetes/client-node';
import type { Incoming } from '../http/cloudevent.ts';
import { HttpError, InvalidEvent, Misconfigured } from '../http/errors.ts';
import { kubeFailure, type KubeFailure } from '../kube/api-error.ts';
import { failureAnswer, failureClass } from '../kube/failures.ts';
import { createJob } from '../kube/jobs-api.ts';
import type { KubeRest } from '../kube/rest.ts';
import { INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../kube/labels.ts';
import { CREATE_JOBS } from '../kube/permissions.ts';
import type { Logger } from '../log.ts';
import { argsFromData } from './args.ts';
import type { Capacity } from './capacity.ts';
import { eventEnv } from './event-env.ts';
import { buildJobBody, type JobSettings } from './job.ts';
import type { LauncherMetrics } from './metrics.ts';
import type { JobStatus } from './status.ts';

export interface LaunchSettings extends JobSettings {
  /** Accepted CloudEvent types; `*` accepts any. */
  acceptedTypes: readonly string[];
  maxEventBytes: number;
  argsField?: string | undefined;
  retryAfterSeconds: number;
}

export interface LauncherDeps {
  template: V1Job;
  settings: LaunchSettings;
  rest: KubeRest;
  namespace: string;
  capacity: Capacity;
  metrics: LauncherMetrics;
  /** Reads a Job that already exists, to tell a redelivery from another job-robot's Job. */
  status: JobStatus;
}

/** An event turned into its Job, not yet created. */
export interface Planned {
  name: string;
  job: V1Job;
  /** The Job as JSON: the create's exact body. */
  json: string;
  event: Incoming;
}

export interface Launched {
  name: string;
  created: boolean;
}

export class Launcher {
  private readonly d: LauncherDeps;
  private readonly anyType: boolean;

  constructor(deps: LauncherDeps) {
    this.d = deps;
    this.anyType = deps.settings.acceptedTypes.includes('*');
  }

  get namespace(): string {
    return this.d.namespace;
  }

  /** The Job for `event`; throws 400 for a type not accepted or invalid data, 413 beyond MAX_EVENT_BYTES. */
  plan(event: Incoming): Planned {
    const s = this.d.settings;
    if (!this.anyType && !s.acceptedTypes.includes(event.type)) {
      throw new InvalidEvent(`event type ${JSON.stringify(event.type)} is not accepted (ACCEPTED_TYPES: ${s.acceptedTypes.join(', ')})`, 'unaccepted-type');
    }
    const env = eventEnv(event, s.maxEventBytes);
    const args = s.argsField ? argsFromData(event.data, s.argsField) : undefined;
    const { job, json } = buildJobBody(this.d.template, s, { source: event.source, id: event.id, type: event.type, env, args });
    return { name: job.metadata!.name!, job, json, event };
  }

  /**
   * Creates the planned Job. Created, or already there and this launcher's: success. Anything else
   * throws an HttpError.
   */
  async launch(p: Planned, log: Logger): Promise<Launched> {
    const slot = await this.d.capacity.reserve(p.name);
    const end = this.d.metrics.createSeconds.startTimer();
    let outcome: 'created' | 'exists' | 'error' = 'error';
    try {
      outcome = await this.create(p);
    } finally {
      end({ outcome });
      slot.release(outcome === 'error' ? 'failed' : outcome);
    }
    if (outcome === 'created') {
      this.d.metrics.jobsCreated.inc();
      log.debug({ job: p.name }, 'Job created');
      return { name: p.name, created: true };
    }
    this.d.metrics.duplicates.inc();
    log.debug({ job: p.name }, 'Job already exists: a redelivery');
    return { name: p.name, created: false };
  }

  private async create(p: Planned): Promise<'created' | 'exists'> {
    try {
      await createJob(this.d.rest, this.d.namespace, p.json);
      return 'created';
    } catch (err) {
      const f = kubeFailure(err);
      if (failureClass(f) !== 'exists') throw createFailure(f, this.d.namespace, this.d.settings.retryAfterSeconds);
    }
    // A redelivery, unless the Job of that name is another job-robot's (the same event reached two
    // instances that share JOB_NAME_PREFIX). One deleted meanwhile was there: a redelivery too.
    const existing = await this.d.status.read(p.name);
    if (existing && !this.d.status.owns(existing)) throw nameTaken(existing, this.d.namespace, this.d.settings.prefix);
    return 'exists';
  }
}

/** 500: the event's Job name is held by a Job this launcher does not own. Pure. */
export function nameTaken(job: V1Job, namespace: string, prefix: string): Misconfigured {
  const labels = job.metadata?.labels ?? {};
  const holder =
    labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE
      ? 'a Job job-robot does not manage'
      : labels[INSTANCE_LABEL]
        ? `job-robot instance ${labels[INSTANCE_LABEL]}`
        : 'the job-robot without INSTANCE';
  return new Misconfigured(
    `Job ${job.metadata?.name} already exists and belongs to ${holder}, not to this launcher: the same event reached another job-robot with the same JOB_NAME_PREFIX`,
    `give each job-robot in namespace ${namespace} its own JOB_NAME_PREFIX (this one has ${prefix}), and route each queue's events to one launcher only`,
    'name-taken',
  );
}

/** Fields of a Job that event data fills: a 422 on these is the event's fault, not the template's. */
const EVENT_FIELDS = [/^metadata\.annotations/, /^metadata\.name$/, /\.env\[\d+\]\.value$/, /\.containers\[0\]\.args/];

const isEventField = (field: string | undefined): boolean => !!field && EVENT_FIELDS.some((re) => re.test(field));

/** Maps a failed create onto the HTTP answer. Pure. */
export function createFailure(f: KubeFailure, namespace: string, retryAfterSeconds: number): HttpError {
  switch (failureClass(f)) {
    case 'not-found':
      return new Misconfigured(`namespace ${namespace} does not exist: ${f.message}`, 'set NAMESPACE to an existing namespace, or create it', 'namespace-missing');
    case 'invalid':
      if (f.code === 422 && (f.causes ?? []).length > 0 && f.causes!.every((c) => isEventField(c.field))) {
        const causes = f.causes!.map((c) => ({ field: c.field, message: c.message }));
        return new InvalidEvent(`the Job built from this event is invalid: ${f.message}`, 'invalid-job', { causes });
      }
      return new Misconfigured(
        `the API server rejected the Job built from the template: ${f.message}`,
        'fix the Job template (JOB_TEMPLATE_PATH); the readiness check shows the dry-run result',
        'template-rejected',
      );
    default:
      return failureAnswer(f, { needs: [CREATE_JOBS], namespace }, retryAfterSeconds);
  }
}
