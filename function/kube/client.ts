import { readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../config/base.ts';
import type { Credentials, TlsSettings } from './credentials.ts';
import { KubeRest } from './rest.ts';

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

/**
 * The credentials of a loaded KubeConfig's current context, for kube/rest.ts: TLS from its cluster
 * and user, and the Authorization header the client library works out for each call (exec plugins
 * and auth providers included). The operator commands (`doctor`, `reap`) reach the API server this
 * way.
 */
export function credentialsOf(kc: KubeConfig): Credentials {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ConfigError('KUBECONFIG: the kubeconfig has no current cluster', ['KUBECONFIG']);
  const user = kc.getCurrentUser();
  const bytes = (data: string | undefined, file: string | undefined) => (data ? Buffer.from(data, 'base64') : file ? readFileSync(file) : undefined);
  const tls: TlsSettings = { rejectUnauthorized: !cluster.skipTLSVerify };
  const ca = bytes(cluster.caData, cluster.caFile);
  const cert = bytes(user?.certData, user?.certFile);
  const key = bytes(user?.keyData, user?.keyFile);
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if (cluster.tlsServerName) tls.servername = cluster.tlsServerName;
  const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
  return {
    server: cluster.server.replace(/\/+$/, ''),
    tls,
    ...(namespace ? { namespace } : {}),
    authorization: async () => {
      const opts: RequestOptions = { headers: {} };
      await kc.applyToHTTPSOptions(opts);
      const value = (opts.headers as Record<string, unknown>)['Authorization'] ?? (opts.headers as Record<string, unknown>)['authorization'];
      return typeof value === 'string' ? value : undefined;
    },
  };
}

/** kube/rest.ts's client for a loaded KubeConfig, with `timeoutMs` as each call's deadline. */
export function restOf(kc: KubeConfig, timeoutMs: number): KubeRest {
  return new KubeRest(credentialsOf(kc), { timeoutMs });
}
