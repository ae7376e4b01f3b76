/**
 * The doctor's admission-policy check: the ValidatingAdmissionPolicy that limits the Jobs
 * job-robot's identity may create (config/cluster/admission-policy.yaml) exists, a binding with
 * the Deny action covers this namespace, and the parameter ConfigMap it names holds what the
 * policy reads. All cluster-scoped reads: an operator's credentials, not job-robot's.
 */
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1LabelSelector,
  type V1ValidatingAdmissionPolicyBinding,
} from '@kubernetes/client-node';
import { fail, isResult, ok, readOrWarn, type CheckResult } from './checks.ts';

export const ADMISSION_POLICY = 'job-robot-jobs';
const POLICY_FILE = 'config/cluster/admission-policy.yaml';
const APPLY = `a cluster admin applies it once: kubectl apply -f ${POLICY_FILE}, its binding set to this namespace (README, "Cluster-enforced limits")`;

/** Whether a label selector selects `labels` (absent: everything, as in a binding's matchResources). Pure. */
export function selects(selector: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const matched = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return (
    matched &&
    (selector.matchExpressions ?? []).every((e) => {
      const has = Object.hasOwn(labels, e.key);
      switch (e.operator) {
        case 'In':
          return has && (e.values ?? []).includes(labels[e.key]!);
        case 'NotIn':
          return !has || !(e.values ?? []).includes(labels[e.key]!);
        case 'Exists':
          return has;
        case 'DoesNotExist':
          return !has;
        default:
          return false;
      }
    })
  );
}

/** The namespace's labels; only the name label Kubernetes sets on every namespace when it may not be read. */
async function namespaceLabels(kc: KubeConfig, namespace: string): Promise<Record<string, string>> {
  const own = { 'kubernetes.io/metadata.name': namespace };
  try {
    const ns = await kc.makeApiClient(CoreV1Api).readNamespace({ name: namespace });
    return { ...ns.metadata?.labels, ...own };
  } catch {
    return own;
  }
}

export async function checkAdmissionPolicy(kc: KubeConfig, namespace: string, policy = ADMISSION_POLICY): Promise<CheckResult> {
  const check = `admission policy ${policy}`;
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  const found = await readOrWarn(
    check,
    'get validatingadmissionpolicies.admissionregistration.k8s.io (cluster-scoped)',
    () => api.readValidatingAdmissionPolicy({ name: policy }),
    () => fail(check, `ValidatingAdmissionPolicy ${policy} does not exist: nothing in the cluster limits the Jobs job-robot's identity creates`, APPLY),
  );
  if (isResult(found)) return found;

  const bindings = await readOrWarn(check, 'list validatingadmissionpolicybindings.admissionregistration.k8s.io (cluster-scoped)', () => api.listValidatingAdmissionPolicyBinding());
  if (isResult(bindings)) return bindings;
  const mine = bindings.items.filter((b) => b.spec?.policyName === policy);
  const labels = await namespaceLabels(kc, namespace);
  const covering = mine.filter((b) => selects(b.spec?.matchResources?.namespaceSelector, labels) && (b.spec?.validationActions ?? []).includes('Deny'));
  if (!covering.length) {
    const seen = mine.length ? `its bindings (${mine.map((b) => b.metadata?.name).join(', ')}) do not select namespace ${namespace} with the Deny action` : 'it has no binding';
    return fail(check, `${policy} does not apply here: ${seen}`, APPLY);
  }
  return checkParameters(kc, check, namespace, covering[0]!);
}

/** The parameter ConfigMap the binding names exists and holds the keys the policy reads. */
async function checkParameters(kc: KubeConfig, check: string, namespace: string, binding: V1ValidatingAdmissionPolicyBinding): Promise<CheckResult> {
  const ref = binding.spec?.paramRef;
  const bound = `bound by ${binding.metadata?.name} to namespace ${namespace}`;
  const name = ref?.name;
  if (!name) return ok(check, `${bound}; its parameters are chosen by a selector, not checked here`);
  const paramNamespace = ref.namespace ?? namespace;
  const where = `ConfigMap ${paramNamespace}/${name}`;
  const gone = `the API server refuses every Job job-robot makes, and every other Job in ${namespace}`;
  const cm = await readOrWarn(
    check,
    `get configmaps in namespace ${paramNamespace} (${where}, the policy's parameters)`,
    () => kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name, namespace: paramNamespace }),
    () => fail(check, `${where} (the policy's parameters) does not exist: ${gone}`, 'kubectl apply -k config/ (config/job-limits.yaml)'),
  );
  if (isResult(cm)) return cm;
  const missing = ['serviceAccount', 'images'].filter((k) => cm.data?.[k] === undefined);
  if (missing.length) return fail(check, `${where} (the policy's parameters) lacks ${missing.join(' and ')}: ${gone}`, 'kubectl apply -k config/ (config/job-limits.yaml)');
  const images = cm.data!['images']!.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  return ok(check, `${bound}; ${where}: pods run as ${cm.data!['serviceAccount']}, ${images.length} allowed image line(s)`);
}
