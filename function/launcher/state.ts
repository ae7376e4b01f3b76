import type { V1Job } from '@kubernetes/client-node';
import { INSTANCE_LABEL } from '../kube/labels.ts';

/** What `GET /jobs/:name` reports. */
export type JobState = 'running' | 'succeeded' | 'failed';

/** A Job's state from its terminal condition: Complete → succeeded, Failed → failed, none yet → running. */
export function jobState(job: V1Job): JobState {
  for (const c of job.status?.conditions ?? []) {
    if (c.status !== 'True') continue;
    if (c.type === 'Complete') return 'succeeded';
    if (c.type === 'Failed') return 'failed';
  }
  return 'running';
}

/** Whether a Job counts against the active cap: unfinished and not being deleted. */
export const isActive = (job: V1Job): boolean => !job.metadata?.deletionTimestamp && jobState(job) === 'running';

/** What `GET /jobs/:name` answers for a Job this launcher owns. */
export interface JobReport {
  job: string;
  namespace: string;
  state: JobState;
  startTime?: string | undefined;
  completionTime?: string | undefined;
  active: number;
  succeeded: number;
  failed: number;
}

/** Whether a Job carries exactly the owner labels (managed-by, and the instance label iff configured). */
export function ownedBy(job: V1Job, owner: Record<string, string>): boolean {
  const labels = job.metadata?.labels ?? {};
  if (!Object.entries(owner).every(([k, v]) => labels[k] === v)) return false;
  return owner[INSTANCE_LABEL] !== undefined || labels[INSTANCE_LABEL] === undefined;
}

export function jobReport(job: V1Job): JobReport {
  const iso = (d: Date | string | undefined) => (d === undefined ? undefined : new Date(d).toISOString());
  return {
    job: job.metadata?.name ?? '',
    namespace: job.metadata?.namespace ?? '',
    state: jobState(job),
    startTime: iso(job.status?.startTime),
    completionTime: iso(job.status?.completionTime),
    active: job.status?.active ?? 0,
    succeeded: job.status?.succeeded ?? 0,
    failed: job.status?.failed ?? 0,
  };
}
