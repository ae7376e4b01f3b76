import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { eventually } from './kube.ts';

/** A minimal Job for harness tests; nothing job-robot-specific. */
export function plainJob(name: string, extra: { labels?: Record<string, string>; backoffLimit?: number } = {}): V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels: extra.labels ?? {} },
    spec: {
      backoffLimit: extra.backoffLimit ?? 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: 'busybox', command: ['true'] }],
        },
      },
    },
  };
}

/** The type of the Job's terminal condition (Complete/Failed) once it is True, else undefined. */
export function terminalCondition(job: V1Job): 'Complete' | 'Failed' | undefined {
  const c = job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  return c?.type as 'Complete' | 'Failed' | undefined;
}

/** Waits until the real job controller gives the Job a terminal condition; returns it. */
export async function waitForJobCondition(kc: KubeConfig, namespace: string, name: string, timeoutMs = 30_000): Promise<'Complete' | 'Failed'> {
  const batch = kc.makeApiClient(BatchV1Api);
  return eventually(async () => terminalCondition(await batch.readNamespacedJob({ name, namespace })), timeoutMs, `Job ${name} to finish`);
}
