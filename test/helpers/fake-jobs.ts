/**
 * An in-memory stand-in for the two Jobs calls the reaper makes, with the API server's paging
 * (limit/continue), uid preconditions (409) and 404s; hooks inject faults. For unit tests of the
 * reaper's own logic; behaviour against the real API server is tested in test/integration.
 */
import {
  ApiException,
  type BatchV1ApiDeleteNamespacedJobRequest,
  type BatchV1ApiListNamespacedJobRequest,
  type V1Job,
  type V1JobList,
  type V1Status,
} from '@kubernetes/client-node';
import type { JobsApi } from '../../function/reaper/reap.ts';

/** The clock unit tests age Jobs against. */
export const NOW = new Date('2026-06-01T12:00:00Z');

export function apiError(code: number, reason: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): ApiException<string> {
  return new ApiException(code, `HTTP ${code}`, JSON.stringify({ kind: 'Status', code, reason, message, ...extra }), headers);
}

export function finished(name: string, ageMs: number, type: 'Complete' | 'Failed' = 'Complete'): V1Job {
  return {
    metadata: { name, uid: `uid-${name}` },
    status: { conditions: [{ type, status: 'True', lastTransitionTime: new Date(NOW.getTime() - ageMs) }] },
  };
}
export const running = (name: string): V1Job => ({ metadata: { name, uid: `uid-${name}` }, status: {} });

/** An in-memory Jobs API with the API server's paging, preconditions and 404s; hooks inject faults. */
export class FakeJobs implements JobsApi {
  jobs: V1Job[];
  lists: BatchV1ApiListNamespacedJobRequest[] = [];
  deletes: BatchV1ApiDeleteNamespacedJobRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  deleteDelayMs = 0;
  onList?: (call: number, req: BatchV1ApiListNamespacedJobRequest) => void | Promise<void>;
  onDelete?: (name: string, attempt: number) => void;
  private attempts = new Map<string, number>();

  constructor(jobs: V1Job[]) {
    this.jobs = jobs;
  }

  async listNamespacedJob(req: BatchV1ApiListNamespacedJobRequest): Promise<V1JobList> {
    this.lists.push(req);
    await this.onList?.(this.lists.length, req);
    // Like etcd: keys in order, `continue` resumes after the last key returned.
    const sorted = [...this.jobs].sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
    const rest = req._continue ? sorted.filter((j) => j.metadata!.name! > req._continue!) : sorted;
    const items = req.limit ? rest.slice(0, req.limit) : rest;
    const more = items.length < rest.length;
    return { items, metadata: more ? { _continue: items.at(-1)!.metadata!.name! } : {} };
  }

  async deleteNamespacedJob(req: BatchV1ApiDeleteNamespacedJobRequest): Promise<V1Status> {
    this.deletes.push(req);
    const attempt = (this.attempts.get(req.name) ?? 0) + 1;
    this.attempts.set(req.name, attempt);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.deleteDelayMs) await new Promise((r) => setTimeout(r, this.deleteDelayMs));
      this.onDelete?.(req.name, attempt);
      const job = this.jobs.find((j) => j.metadata?.name === req.name);
      if (!job) throw apiError(404, 'NotFound', `jobs.batch "${req.name}" not found`);
      const uid = req.body?.preconditions?.uid;
      if (uid && uid !== job.metadata?.uid) throw apiError(409, 'Conflict', 'the UID in the precondition does not match');
      this.jobs = this.jobs.filter((j) => j !== job);
      return { status: 'Success' };
    } finally {
      this.inFlight--;
    }
  }
}

