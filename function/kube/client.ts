import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * Loads the Kubernetes credentials the way a pod expects: `KUBECONFIG` when set (local runs and
 * tests), otherwise the in-cluster ServiceAccount token.
 */
export function loadKubeConfig(kubeconfigPath = process.env['KUBECONFIG']): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  return kc;
}

/** The namespace to work in: explicit config, then the pod's own namespace, then the kubeconfig context's. */
export function resolveNamespace(configured: string | undefined, kc?: KubeConfig): string {
  if (configured) return configured;
  try {
    const fromPod = readFileSync(SA_NAMESPACE_FILE, 'utf8').trim();
    if (fromPod) return fromPod;
  } catch {
    // not in a pod
  }
  const ctx = kc?.getContextObject(kc.getCurrentContext());
  return ctx?.namespace ?? 'default';
}
