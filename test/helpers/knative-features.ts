/**
 * Knative Eventing's feature flags (the config-features ConfigMap) in tests.
 *
 * - knativeFeatures: a namespace of the test's own standing in for knative-eventing, holding
 *   config-features: suites never share the cluster's knative-eventing namespace, and the doctor is
 *   told where to look (--knative-namespace).
 * - featuresApplied: config-features reaches Knative's processes through a ConfigMap watch, some
 *   time after the update. It waits until the channel dispatcher and the PingSource adapter (those
 *   running) have logged the new flags: config-logging is at debug level in the planes, where
 *   Knative's config store logs each update it takes. The broker filter's store logs through
 *   Knative's fallback logger, at info, so it says nothing; wait on behaviour there.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { applyManifests, deleteNamespace, eventually } from './kube.ts';
import type { KnativePlane } from './knative-plane.ts';

export interface KnativeFeatures {
  namespace: string;
  set(features: Record<string, string>): Promise<void>;
  remove(): Promise<void>;
}

/** Creates a namespace standing in for knative-eventing, holding config-features with `features`. */
export async function knativeFeatures(admin: KubeConfig, features: Record<string, string>): Promise<KnativeFeatures> {
  const namespace = `knative-eventing-${randomBytes(4).toString('hex')}`;
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  // Server-side apply: keys left out of a later `set` are removed (this field manager owns them).
  const set = async (data: Record<string, string>) => {
    await applyManifests(admin, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config-features' }, data }), namespace);
  };
  await set(features);
  return { namespace, set, remove: () => deleteNamespace(admin, namespace) };
}

export async function featuresApplied(plane: KnativePlane, flags: Record<string, string>): Promise<void> {
  const procs = [plane.dispatcher, plane.mtping].filter((p) => p !== undefined && p.running());
  for (const proc of procs) {
    await eventually(
      async () => {
        const updates = proc!.lines().filter((l) => String(l['msg']).includes('"config-features" config was added or updated'));
        const last = String(updates.at(-1)?.['msg'] ?? '').toLowerCase();
        return Object.entries(flags).every(([k, v]) => last.includes(`"${k}":"${v}"`.toLowerCase()));
      },
      30_000,
      `${proc!.name} to take config-features ${JSON.stringify(flags)}`,
    );
  }
}
