/**
 * The shipped admission policy (config/cluster/admission-policy.yaml) on the test control plane:
 * adapted to a test namespace exactly as the README tells a user in another namespace to adapt it
 * (the binding's paramRef namespace and namespace selector), under names unique to that namespace
 * so suites never share a cluster-scoped object.
 */
import {
  AdmissionregistrationV1Api,
  BatchV1Api,
  type KubeConfig,
  type KubernetesObject,
  type V1Job,
  type V1ValidatingAdmissionPolicy,
  type V1ValidatingAdmissionPolicyBinding,
} from '@kubernetes/client-node';
import { kubeFailure, type KubeFailure } from '../../function/kube/api-error.ts';
import { applyManifests, eventually, parseManifests } from './kube.ts';
import { readRepoFile } from './paths.ts';

export const POLICY_FILE = 'config/cluster/admission-policy.yaml';
export const LIMITS_FILE = 'config/job-limits.yaml';

/** The policy and binding as shipped. */
export function shippedPolicy(): { policy: V1ValidatingAdmissionPolicy; binding: V1ValidatingAdmissionPolicyBinding } {
  const docs = parseManifests(readRepoFile(POLICY_FILE)) as KubernetesObject[];
  const policy = docs.find((d) => d.kind === 'ValidatingAdmissionPolicy') as V1ValidatingAdmissionPolicy | undefined;
  const binding = docs.find((d) => d.kind === 'ValidatingAdmissionPolicyBinding') as V1ValidatingAdmissionPolicyBinding | undefined;
  if (!policy || !binding || docs.length !== 2) throw new Error(`${POLICY_FILE} must hold one policy and one binding`);
  return { policy, binding };
}

/** The README's adaptation: the binding's two namespace values; here also unique names. */
export function adaptedPolicy(namespace: string, name = `job-robot-jobs-${namespace}`) {
  const { policy, binding } = shippedPolicy();
  policy.metadata = { ...policy.metadata, name };
  binding.metadata = { ...binding.metadata, name };
  binding.spec!.policyName = name;
  binding.spec!.paramRef!.namespace = namespace;
  binding.spec!.matchResources!.namespaceSelector!.matchLabels!['kubernetes.io/metadata.name'] = namespace;
  return { policy, binding, name };
}

export interface AppliedPolicy {
  name: string;
  remove(): Promise<void>;
}

/** Applies the adapted policy and binding (cluster-scoped, as an admin would); `remove` deletes both. */
export async function applyAdmissionPolicy(admin: KubeConfig, namespace: string, name?: string): Promise<AppliedPolicy> {
  const adapted = adaptedPolicy(namespace, name);
  await applyManifests(admin, [adapted.policy, adapted.binding].map((o) => JSON.stringify(o)).join('\n---\n'));
  const api = admin.makeApiClient(AdmissionregistrationV1Api);
  return {
    name: adapted.name,
    async remove() {
      await api.deleteValidatingAdmissionPolicyBinding({ name: adapted.name }).catch(() => undefined);
      await api.deleteValidatingAdmissionPolicy({ name: adapted.name }).catch(() => undefined);
    },
  };
}

/** Creates `job` (dry run or not); the API server's refusal as a KubeFailure, or undefined when it was admitted. */
export async function tryCreate(kc: KubeConfig, namespace: string, job: V1Job, dryRun = false): Promise<KubeFailure | undefined> {
  try {
    await kc.makeApiClient(BatchV1Api).createNamespacedJob({ namespace, body: job, ...(dryRun ? { dryRun: 'All' } : {}) });
    return undefined;
  } catch (err) {
    return kubeFailure(err);
  }
}

/**
 * Waits until the API server enforces policy `name`: its policy informer picks a new policy and
 * binding up a moment after they are stored. Polls with a dry-run create of `bad` (a Job the policy
 * refuses) until the refusal names the policy.
 */
export async function waitEnforced(robot: KubeConfig, namespace: string, name: string, bad: V1Job, timeoutMs = 30_000): Promise<KubeFailure> {
  return eventually(
    async () => {
      const f = await tryCreate(robot, namespace, bad, true);
      return f && f.message.includes(`ValidatingAdmissionPolicy '${name}'`) ? f : undefined;
    },
    timeoutMs,
    `ValidatingAdmissionPolicy ${name} to be enforced`,
  );
}
