import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../config/base.ts';

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

/** `loadKubeConfig()` for a component's start: an unreadable KUBECONFIG is a configuration error naming it. */
export function kubeConfigAtStart(): KubeConfig {
  try {
    return loadKubeConfig();
  } catch (err) {
    const path = process.env['KUBECONFIG'];
    throw new ConfigError(`KUBECONFIG: cannot load ${path ?? 'the in-cluster credentials'}: ${(err as Error).message}`, ['KUBECONFIG']);
  }
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
