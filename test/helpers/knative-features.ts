/**
 * Knative Eventing's feature flags (the config-features ConfigMap) for tests, in a namespace of the
 * test's own: suites never share the cluster's knative-eventing namespace, and the doctor is told
 * where to look (--knative-namespace).
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { applyManifests, deleteNamespace } from './kube.ts';

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
