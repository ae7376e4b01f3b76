/**
 * The kubelet stand-in: with no kubelet in the test control plane, pods never run. These helpers set
 * a Job's pods to a terminal phase through the pods/status subresource, exactly what a kubelet would
 * report, so the real job controller marks the Job Complete or Failed.
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';

export type TerminalPhase = 'Succeeded' | 'Failed';

const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name';

/** Pods of a Job that are not yet in a terminal phase. */
export async function livePods(kc: KubeConfig, namespace: string, jobName: string): Promise<V1Pod[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespacedPod({ namespace, labelSelector: `${JOB_NAME_LABEL}=${jobName}` });
  return list.items.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed' && !p.metadata?.deletionTimestamp);
}

/** Reports one pod as terminated with `phase`, the way a kubelet does. Retries on write conflicts. */
export async function finishPod(kc: KubeConfig, pod: V1Pod, phase: TerminalPhase): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const name = pod.metadata!.name!;
  const namespace = pod.metadata!.namespace!;
  const now = new Date();
  for (let attempt = 0; ; attempt++) {
    const current = await core.readNamespacedPodStatus({ name, namespace });
    const containers = current.spec?.containers ?? [];
    current.status = {
      ...current.status,
      phase,
      startTime: current.status?.startTime ?? now,
      conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: now, reason: phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed' }],
      containerStatuses: containers.map((c) => ({
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: {
          terminated: {
            exitCode: phase === 'Succeeded' ? 0 : 1,
            reason: phase === 'Succeeded' ? 'Completed' : 'Error',
            startedAt: now,
            finishedAt: now,
          },
        },
      })),
    };
    try {
      await core.replaceNamespacedPodStatus({ name, namespace, body: current });
      return;
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || attempt >= 10) throw err;
    }
  }
}

/**
 * Waits for the Job's live pods to appear and finishes each with `phase`. Returns how many pods it
 * finished. For a Job to reach Failed, call it once per allowed attempt (backoffLimit + 1).
 */
export async function finishJobPods(
  kc: KubeConfig,
  namespace: string,
  jobName: string,
  phase: TerminalPhase,
  timeoutMs = 30_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pods = await livePods(kc, namespace, jobName);
    if (pods.length) {
      for (const pod of pods) await finishPod(kc, pod, phase);
      return pods.length;
    }
    if (Date.now() > deadline) throw new Error(`no live pod of Job ${namespace}/${jobName} appeared in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
