import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const here = import.meta.dirname;

/** Reads the version a go.mod pins for `module`, so the pin lives in exactly one place. */
function pinned(goMod: string, module: string): string {
  const text = readFileSync(join(here, goMod), 'utf8');
  const match = new RegExp(`^\\s*(?:require\\s+)?${module.replaceAll('.', '\\.')}\\s+(v\\S+)`, 'm').exec(text);
  if (!match?.[1]) throw new Error(`${goMod} does not pin ${module}`);
  return match[1];
}

export const kubernetesVersion = pinned('k8s/go.mod', 'k8s.io/kubernetes');
export const etcdVersion = pinned('etcd/go.mod', 'go.etcd.io/etcd/server/v3');
export const eventingVersion = pinned('knative/go.mod', 'knative.dev/eventing');
export const servingVersion = pinned('serving/go.mod', 'knative.dev/serving');

/** The root of job-robot's build cache, outside the repository. */
function cacheRoot(): string {
  return process.env['JOB_ROBOT_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'job-robot');
}

/** Folder holding etcd, kube-apiserver and kube-controller-manager, outside the repository, keyed by version. */
export function cacheDir(): string {
  return join(cacheRoot(), `k8s-${kubernetesVersion}-etcd-${etcdVersion}`);
}

/** Folder holding Knative Eventing's broker filter, in-memory channel dispatcher and PingSource adapter, and the CRDs they read. */
export function knativeCacheDir(): string {
  return join(cacheRoot(), `knative-eventing-${eventingVersion}`);
}

/** Folder holding Knative Serving's queue-proxy, keyed by version. */
export function servingCacheDir(): string {
  return join(cacheRoot(), `knative-serving-${servingVersion}`);
}

/** Folder holding Knative Eventing's JobSink receiver and the CRDs, ConfigMaps and roles it reads, keyed by version. */
export function jobSinkCacheDir(): string {
  return join(cacheRoot(), `knative-jobsink-${eventingVersion}`);
}
