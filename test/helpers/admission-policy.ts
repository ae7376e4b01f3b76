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
import { parseTemplate } from '../../function/kube/job-template.ts';
import { buildJob } from '../../function/launcher/job.ts';
import { applyManifests, eventually, parseManifests, serviceAccountConfig } from './kube.ts';
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

/**
 * kube-apiserver stops its ConfigMap informer for policy parameters for good once no binding names a
 * policy with a ConfigMap paramKind for one refresh (a second), kubernetes/kubernetes#130887: every
 * later policy then finds no parameters. Suites create and remove policies one after another, so
 * this binding, which selects no namespace and never refuses, keeps one named for the API server's
 * life. It is applied before the first policy and never removed (a private control plane goes with
 * the run; on a TEST_KUBECONFIG cluster it stays, harmless).
 */
const KEEPER = 'job-robot-test-param-informer-keeper';
let keeper: Promise<unknown> | undefined;

function keepParamInformer(admin: KubeConfig): Promise<unknown> {
  keeper ??= applyManifests(
    admin,
    [
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: { name: KEEPER },
        spec: {
          failurePolicy: 'Ignore',
          paramKind: { apiVersion: 'v1', kind: 'ConfigMap' },
          matchConstraints: { resourceRules: [{ apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['jobs'] }] },
          validations: [{ expression: 'true' }],
        },
      },
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicyBinding',
        metadata: { name: KEEPER },
        spec: {
          policyName: KEEPER,
          validationActions: ['Deny'],
          paramRef: { name: KEEPER, namespace: 'default', parameterNotFoundAction: 'Allow' },
          matchResources: { namespaceSelector: { matchLabels: { 'job-robot.dev/selected-by-no-test': 'true' } } },
        },
      },
    ]
      .map((o) => JSON.stringify(o))
      .join('\n---\n'),
  );
  return keeper;
}

/** Applies the adapted policy and binding (cluster-scoped, as an admin would); `remove` deletes both. */
export async function applyAdmissionPolicy(admin: KubeConfig, namespace: string, name?: string): Promise<AppliedPolicy> {
  await keepParamInformer(admin);
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
 * Waits until the API server enforces policy `name` with its parameters: its informers pick a new
 * policy, binding and parameter ConfigMap up a moment after they are stored (until the ConfigMap is
 * seen, the binding refuses every Job in the namespace). Polls with dry-run creates as `robot`
 * (job-robot) until `bad` is refused by the policy and `good` is admitted.
 */
export async function waitEnforced(robot: KubeConfig, namespace: string, name: string, bad: V1Job, good: V1Job, timeoutMs = 30_000): Promise<KubeFailure> {
  return eventually(
    async () => {
      const refused = await tryCreate(robot, namespace, bad, true);
      if (!refused?.message.includes(`ValidatingAdmissionPolicy '${name}'`)) return undefined;
      return (await tryCreate(robot, namespace, good, true)) === undefined ? refused : undefined;
    },
    timeoutMs,
    `ValidatingAdmissionPolicy ${name} to be enforced with its parameters`,
  );
}

/** The Job the launcher makes from the shipped template (admitted), and the same with hostPID (refused). */
export function probeJobs(): { good: V1Job; bad: V1Job } {
  const [configMap] = parseManifests(readRepoFile('config/job-template.yaml')) as unknown as Array<{ data: Record<string, string> }>;
  const template = parseTemplate(configMap!.data['job.yaml']!, 'config/job-template.yaml');
  const good = buildJob(template, { prefix: 'probe-', ttlSeconds: 60, serviceAccount: 'job-robot-job' }, { source: '/probe', id: 'probe', type: 't', env: [] });
  const bad = structuredClone(good);
  bad.spec!.template.spec!.hostPID = true;
  return { good, bad };
}

/** `waitEnforced` with the probe Jobs, as job-robot (whose ServiceAccount must exist in `namespace`). */
export async function waitPolicyReady(admin: KubeConfig, namespace: string, name: string): Promise<void> {
  const { good, bad } = probeJobs();
  await waitEnforced(await serviceAccountConfig(admin, namespace, 'job-robot'), namespace, name, bad, good);
}
