import type { V1Job } from '@kubernetes/client-node';
import { kubeFailure } from '../kube/api-error.ts';
import { readJob } from '../kube/jobs-api.ts';
import type { KubeRest } from '../kube/rest.ts';
import { failureAnswer, failureClass } from '../kube/failures.ts';
import { isDns1123Label } from '../kube/names.ts';
import { GET_JOBS } from '../kube/permissions.ts';
import { jobReport, ownedBy, type JobReport } from './state.ts';

export interface JobStatusDeps {
  rest: KubeRest;
  namespace: string;
  /** The owner labels; a Job without them is reported as absent. */
  owner: Record<string, string>;
  retryAfterSeconds: number;
}

/** Reads a Job's state for `GET /jobs/:name` (the 202's Location). Undefined: gone, or not ours. */
export class JobStatus {
  private readonly d: JobStatusDeps;

  constructor(deps: JobStatusDeps) {
    this.d = deps;
  }

  async report(name: string): Promise<JobReport | undefined> {
    if (!isDns1123Label(name)) return undefined;
    const job = await this.read(name);
    return job && this.owns(job) ? jobReport(job) : undefined;
  }

  /** Whether `job` carries this launcher's owner labels. */
  owns(job: V1Job): boolean {
    return ownedBy(job, this.d.owner);
  }

  /** The Job named `name` whoever owns it; undefined when there is none. Other failures throw the HttpError kube/failures.ts maps them to. */
  async read(name: string): Promise<V1Job | undefined> {
    try {
      return await readJob(this.d.rest, this.d.namespace, name);
    } catch (err) {
      const f = kubeFailure(err);
      if (failureClass(f) === 'not-found') return undefined;
      throw failureAnswer(f, { needs: [GET_JOBS], namespace: this.d.namespace }, this.d.retryAfterSeconds);
    }
  }
}
