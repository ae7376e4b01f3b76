/**
 * The doctor's checks of the security model (README, "Security model"): the Knative Services are
 * private, Knative Eventing sends OIDC tokens, and an EventPolicy says who may send to the Broker.
 * A read the credentials may not make is a warning that names the missing permission.
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { describePermission } from '../kube/permissions.ts';
import { fail, isResult, ok, readOrWarn, type CheckResult } from './checks.ts';

export const VISIBILITY_LABEL = 'networking.knative.dev/visibility';
export const KNATIVE_EVENTING_NAMESPACE = 'knative-eventing';
export const OIDC_FEATURE = 'authentication-oidc';

interface Named {
  metadata?: { name?: string; labels?: Record<string, string> };
}

/** A Knative resource to list: its API, and the Knative part that serves it. */
interface KnativeList {
  group: string;
  version: string;
  plural: string;
  product: 'Serving' | 'Eventing';
}

/**
 * The `kind` objects of `namespace`; a list the credentials may not make is a warning naming the
 * permission, and a resource not served fails naming the Knative part to install.
 */
function listOrWarn<T>(check: string, kc: KubeConfig, namespace: string, kind: KnativeList, labelSelector?: string): Promise<{ items: T[] } | CheckResult> {
  return readOrWarn(
    check,
    `${describePermission({ verb: 'list', group: kind.group, resource: kind.plural })} in namespace ${namespace}`,
    () =>
      kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: kind.group, version: kind.version, namespace, plural: kind.plural, ...(labelSelector ? { labelSelector } : {}) }) as Promise<{ items: T[] }>,
    () => fail(check, `Knative ${kind.product} is not served (${kind.plural}.${kind.group})`, `install Knative ${kind.product} (https://knative.dev/docs/install/), 1.22 or newer`),
  );
}

/** Every job-robot Knative Service in the namespace is cluster-local. */
export async function checkPrivateServices(kc: KubeConfig, namespace: string): Promise<CheckResult> {
  const check = 'Services cluster-local';
  const list = await listOrWarn<Named>(check, kc, namespace, { group: 'serving.knative.dev', version: 'v1', plural: 'services', product: 'Serving' }, 'app.kubernetes.io/name=job-robot');
  if (isResult(list)) return list;
  const names = list.items.map((s) => s.metadata?.name ?? '?');
  if (!names.length) return fail(check, `no job-robot Knative Services in ${namespace}`, 'kubectl apply -k config/');
  const open = list.items.filter((s) => s.metadata?.labels?.[VISIBILITY_LABEL] !== 'cluster-local').map((s) => s.metadata?.name ?? '?');
  if (open.length) {
    return fail(
      check,
      `reachable from outside the cluster: ${open.join(', ')} (no ${VISIBILITY_LABEL}: cluster-local label)`,
      `${open.map((n) => `kubectl -n ${namespace} label ksvc ${n} ${VISIBILITY_LABEL}=cluster-local`).join('; ')}; to expose one on purpose, keep it cluster-local and add a DomainMapping (README, "Private Services")`,
    );
  }
  return ok(check, `cluster-local: ${names.join(', ')}`);
}

/** Knative Eventing sends OIDC tokens (the functions refuse deliveries without one). */
export async function checkOidcFeature(kc: KubeConfig, knativeNamespace = KNATIVE_EVENTING_NAMESPACE): Promise<CheckResult> {
  const check = 'OIDC sender authentication';
  const where = `ConfigMap ${knativeNamespace}/config-features`;
  const cm = await readOrWarn(
    check,
    `get configmaps in namespace ${knativeNamespace} (${where})`,
    () => kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: 'config-features', namespace: knativeNamespace }),
    () => fail(check, `${where} does not exist: is Knative Eventing installed in ${knativeNamespace}?`, 'install Knative Eventing (https://knative.dev/docs/install/), 1.22 or newer'),
  );
  if (isResult(cm)) return cm;
  const value = cm.data?.[OIDC_FEATURE];
  if (value === 'enabled') return ok(check, `${OIDC_FEATURE}: enabled in ${where}`);
  return fail(
    check,
    `${OIDC_FEATURE} is ${value === undefined ? 'unset (Knative\'s default: disabled)' : `"${value}"`} in ${where}: Knative sends no tokens, and the functions refuse every delivery`,
    `kubectl -n ${knativeNamespace} patch configmap config-features --type merge -p '{"data":{"${OIDC_FEATURE}":"enabled"}}'`,
  );
}

interface EventPolicy {
  metadata?: { name?: string };
  spec?: {
    to?: Array<{ ref?: { kind?: string; name?: string }; selector?: unknown }>;
    from?: Array<{ ref?: { kind?: string; name?: string; namespace?: string }; sub?: string }>;
  };
}

const describeFrom = (f: NonNullable<NonNullable<EventPolicy['spec']>['from']>[number]): string =>
  f.ref ? `${f.ref.kind}/${f.ref.namespace ? `${f.ref.namespace}/` : ''}${f.ref.name}` : `subject ${f.sub}`;

/** An EventPolicy names who may send to the Broker. */
export async function checkEventPolicy(kc: KubeConfig, namespace: string, broker: string): Promise<CheckResult> {
  const check = `EventPolicy for Broker ${namespace}/${broker}`;
  const list = await listOrWarn<EventPolicy>(check, kc, namespace, { group: 'eventing.knative.dev', version: 'v1alpha1', plural: 'eventpolicies', product: 'Eventing' });
  if (isResult(list)) return list;
  // An EventPolicy without `to` applies to every addressable in its namespace.
  const covering = list.items.filter((p) => !p.spec?.to?.length || p.spec.to.some((t) => t.ref?.kind === 'Broker' && t.ref.name === broker));
  if (!covering.length) {
    return fail(
      check,
      `no EventPolicy names Broker ${broker}: Knative's default-authorization-mode decides who may send (allow-same-namespace unless changed: any workload in ${namespace}, Job pods included)`,
      'kubectl apply -k config/ (config/event-policy.yaml lets only the bridge, the ApiServerSource on its Jobs and the results Trigger (its replies) send)',
    );
  }
  const senders = covering.flatMap((p) => (p.spec?.from ?? []).map(describeFrom));
  return ok(check, `${covering.map((p) => p.metadata?.name).join(', ')}: only ${senders.length ? senders.join(', ') : 'no one'} may send`);
}
