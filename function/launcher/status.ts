import type { BatchV1Api, V1Job } from '@kubernetes/client-node';
import { Misconfigured, RetryLater } from '../http/errors.ts';
import { kubeFailure } from '../kube/api-error.ts';
import type { CallOptions } from '../kube/call-options.ts';
import { isDns1123Label } from '../kube/names.ts';
import { jobReport, ownedBy, type JobReport } from './state.ts';

export interface JobStatusDeps {
  batch: BatchV1Api;
  calls: CallOptions;
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

  /** The Job named `name` whoever owns it; undefined when there is none. */
  async read(name: string): Promise<V1Job | undefined> {
    try {
      return await this.d.batch.readNamespacedJob({ name, namespace: this.d.namespace }, this.d.calls.call());
    } catch (err) {
      const f = kubeFailure(err);
      if (f.code === 404) return undefined;
      if (f.code === 403) {
        throw new Misconfigured(
          `the API server refused to read the Job: ${f.message}`,
          `grant get on jobs.batch in namespace ${this.d.namespace}: kubectl apply -n ${this.d.namespace} -f config/rbac.yaml`,
          'forbidden',
        );
      }
      if (f.code === 429) throw new RetryLater(`the API server is throttling: ${f.message}`, 429, f.retryAfterSeconds ?? this.d.retryAfterSeconds, 'api-throttled');
      throw new RetryLater(`cannot read the Job: ${f.message}`, 503, f.retryAfterSeconds ?? this.d.retryAfterSeconds, 'api-unavailable');
    }
  }
}
