import { KubeConfig } from '@kubernetes/client-node';

/** A client for `kc`'s cluster carrying a bearer token the API server never issued: every call is answered 401. */
export function strangerConfig(kc: KubeConfig): KubeConfig {
  const stranger = new KubeConfig();
  stranger.loadFromOptions({
    clusters: [{ ...kc.getCurrentCluster()!, name: 'cluster' }],
    users: [{ name: 'stranger', token: 'not-a-token-the-api-server-issued' }],
    contexts: [{ name: 'stranger', cluster: 'cluster', user: 'stranger' }],
    currentContext: 'stranger',
  });
  return stranger;
}
