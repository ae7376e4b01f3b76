/**
 * Finished Jobs without running pods, fast: a Job created suspended (so the job controller never
 * makes pods) whose terminal status is written through the jobs/status subresource, as the job
 * controller would write it, at a chosen finish time. The API server's status validation holds
 * them to the real shape (startTime; SuccessCriteriaMet + completionTime for Complete;
 * FailureTarget for Failed). The job controller leaves a finished Job alone: it creates no pods and
 * never resumes it, so it stays exactly as written. Use finishJobPods (pods.ts) when the test is
 * about the job controller's own behaviour; use this for populations and benchmarks.
 */
import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import type { CallOptions } from '../../function/kube/call-options.ts';
import { plainJob } from './jobs.ts';

export type Outcome = 'Complete' | 'Failed';

export function suspendedJob(name: string, labels: Record<string, string>, annotations?: Record<string, string>): V1Job {
  const job = plainJob(name, { labels });
  job.spec!.suspend = true;
  if (annotations) job.metadata!.annotations = annotations;
  return job;
}

/** The JSON patch that gives a Job the terminal status the job controller would give it at `at`. */
export function finishedStatusPatch(outcome: Outcome, at: Date): object[] {
  const t = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const conditions =
    outcome === 'Complete'
      ? [
          { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached', lastTransitionTime: t, lastProbeTime: t },
          { type: 'Complete', status: 'True', reason: 'CompletionsReached', lastTransitionTime: t, lastProbeTime: t },
        ]
      : [
          { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded', lastTransitionTime: t, lastProbeTime: t },
          { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', lastTransitionTime: t, lastProbeTime: t },
        ];
  return [
    { op: 'add', path: '/status/startTime', value: t },
    { op: 'add', path: '/status/conditions', value: conditions },
    ...(outcome === 'Complete'
      ? [
          { op: 'add', path: '/status/completionTime', value: t },
          { op: 'add', path: '/status/succeeded', value: 1 },
        ]
      : [{ op: 'add', path: '/status/failed', value: 1 }]),
  ];
}

/** Creates Job `name` with `labels`, finished with `outcome` at `at`. Returns the Job as stored. `calls` reuses connections (fast set-up). */
export async function createFinishedJob(
  kc: KubeConfig,
  namespace: string,
  name: string,
  outcome: Outcome,
  at: Date,
  labels: Record<string, string>,
  calls?: CallOptions,
  annotations?: Record<string, string>,
): Promise<V1Job> {
  const batch = kc.makeApiClient(BatchV1Api);
  await batch.createNamespacedJob({ namespace, body: suspendedJob(name, labels, annotations) }, calls?.call());
  return batch.patchNamespacedJobStatus({ name, namespace, body: finishedStatusPatch(outcome, at) }, calls?.call());
}

/** Runs `fn` over `items` with at most `limit` at once (test set-up at speed). */
export async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
