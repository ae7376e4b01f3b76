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

/**
 * `loadKubeConfig(path)` for a component's start: an unreadable kubeconfig is a configuration error
 * naming where it came from (`source`: the variable or flag).
 */
export function kubeConfigAtStart(path = process.env['KUBECONFIG'], source = 'KUBECONFIG'): KubeConfig {
  try {
    return loadKubeConfig(path);
  } catch (err) {
    throw new ConfigError(`${source}: cannot load ${path ?? 'the in-cluster credentials'}: ${(err as Error).message}`, [source]);
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
