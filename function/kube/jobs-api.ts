/** The Jobs API calls job-robot's functions make, over kube/rest.ts. */
import type { V1DeleteOptions, V1Job, V1JobList } from '@kubernetes/client-node';
import type { CallOptions, KubeRest, Query } from './rest.ts';

/**
 * A page of Jobs as the API server sends it. The list metadata is the wire's: the next page's token
 * is `continue` (the client library's model calls it `_continue`, which JSON never holds).
 */
export type JobList = Omit<V1JobList, 'metadata'> & { metadata?: { continue?: string; resourceVersion?: string; remainingItemCount?: number } };

/** The Jobs calls of any namespace over one KubeRest: what the reaper lists and deletes through. */
export interface JobsClient {
  listJobs(namespace: string, query: Query): Promise<JobList>;
  deleteJob(namespace: string, name: string, body: V1DeleteOptions): Promise<void>;
}

/** The path of the Jobs of `namespace`, or of one Job. */
export function jobsPath(namespace: string, name?: string): string {
  const base = `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

/** Creates a Job from its exact JSON; with `dryRun`, only judges it. The answer is not read. */
export async function createJob(rest: KubeRest, namespace: string, json: string, opts: { dryRun?: boolean } & Pick<CallOptions, 'timeoutMs'> = {}): Promise<void> {
  // Strict: a field the API server does not know fails the create instead of vanishing.
  const query: Query = { fieldValidation: 'Strict', ...(opts.dryRun ? { dryRun: 'All' } : {}) };
  await rest.post<void>(jobsPath(namespace), { query, json, discardBody: true, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
}

export function readJob(rest: KubeRest, namespace: string, name: string): Promise<V1Job> {
  return rest.get<V1Job>(jobsPath(namespace, name));
}

export function listJobs(rest: KubeRest, namespace: string, query: Query): Promise<JobList> {
  return rest.get<JobList>(jobsPath(namespace), { query });
}

/**
 * Deletes a Job with `body` as its DeleteOptions (propagation, preconditions: the API server reads
 * them from the body once one is sent, not from the query). The answer is not read.
 */
export async function deleteJob(rest: KubeRest, namespace: string, name: string, body: V1DeleteOptions): Promise<void> {
  await rest.delete<void>(jobsPath(namespace, name), { body, discardBody: true });
}

/** The Jobs calls over `rest`: its connection pool, its deadline on every call. */
export function restJobs(rest: KubeRest): JobsClient {
  return {
    listJobs: (namespace, query) => listJobs(rest, namespace, query),
    deleteJob: (namespace, name, body) => deleteJob(rest, namespace, name, body),
  };
}
