import type { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../config/base.ts';
import { loadKubeConfig } from '../kube/client.ts';

/** The Kubernetes credentials; an unreadable KUBECONFIG is a configuration error naming it. */
export function kubeConfig(): KubeConfig {
  try {
    return loadKubeConfig();
  } catch (err) {
    const path = process.env['KUBECONFIG'];
    throw new ConfigError(`KUBECONFIG: cannot load ${path ?? 'the in-cluster credentials'}: ${(err as Error).message}`, ['KUBECONFIG']);
  }
}
