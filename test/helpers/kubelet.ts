/**
 * The local stand-in for a kubelet, for the dev stack and the end-to-end tests: it watches a
 * namespace's pods and, `runMs` after each appears, reports it finished through the pods/status
 * subresource (see pods.ts). The real job controller then marks the Job Complete or Failed.
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { finishPod, type TerminalPhase } from './pods.ts';

export interface KubeletStandIn {
  /** Pods reported finished so far. */
  finished(): number;
  /** Holds pods running (no more reports) until resume(). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export interface KubeletOptions {
  /** How long a pod "runs" before it is reported finished. */
  runMs?: number;
  /** Poll interval. */
  intervalMs?: number;
  /** The phase to report for a pod; default Succeeded. */
  outcome?: (pod: V1Pod) => TerminalPhase;
  onFinish?: (pod: V1Pod, phase: TerminalPhase) => void;
}

export function startKubeletStandIn(kc: KubeConfig, namespace: string, opts: KubeletOptions = {}): KubeletStandIn {
  const core = kc.makeApiClient(CoreV1Api);
  const runMs = opts.runMs ?? 2000;
  const outcome = opts.outcome ?? (() => 'Succeeded' as const);
  const firstSeen = new Map<string, number>();
  let count = 0;
  let paused = false;
  let stopped = false;

  const tick = async () => {
    const list = await core.listNamespacedPod({ namespace });
    const now = Date.now();
    const live = list.items.filter((p) => {
      const phase = p.status?.phase;
      return phase !== 'Succeeded' && phase !== 'Failed' && !p.metadata?.deletionTimestamp;
    });
    const liveUids = new Set(live.map((p) => p.metadata!.uid!));
    for (const uid of firstSeen.keys()) if (!liveUids.has(uid)) firstSeen.delete(uid);
    const due = live.filter((p) => {
      const uid = p.metadata!.uid!;
      if (!firstSeen.has(uid)) firstSeen.set(uid, now);
      return now - firstSeen.get(uid)! >= runMs;
    });
    await Promise.all(
      due.map(async (pod) => {
        const phase = outcome(pod);
        try {
          await finishPod(kc, pod, phase);
          count++;
          opts.onFinish?.(pod, phase);
        } catch {
          // deleted meanwhile, or the API server is away: try again next tick
        }
      }),
    );
  };

  const loop = (async () => {
    while (!stopped) {
      if (!paused) await tick().catch(() => undefined);
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
    }
  })();

  return {
    finished: () => count,
    pause: () => void (paused = true),
    resume: () => void (paused = false),
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
