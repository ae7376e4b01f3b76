/**
 * `job-robot doctor` checks: each looks at one thing a working job-robot needs and says, in plain
 * words, that it is fine or what to do. Checks take their clients, so tests pass real ones.
 */
import {
  ApisApi,
  AuthorizationV1Api,
  CustomObjectsApi,
  CoreV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { kubeFailure } from '../kube/api-error.ts';
import { failureClass, rbacFix } from '../kube/failures.ts';
import { describePermission, JOB_ROBOT_PERMISSIONS, type Permission } from '../kube/permissions.ts';

export type Status = 'ok' | 'fail' | 'warn';

export interface CheckResult {
  check: string;
  status: Status;
  detail: string;
  fix?: string;
}

export const ok = (check: string, detail: string): CheckResult => ({ check, status: 'ok', detail });
export const fail = (check: string, detail: string, fix: string): CheckResult => ({ check, status: 'fail', detail, fix });
export const warn = (check: string, detail: string, fix: string): CheckResult => ({ check, status: 'warn', detail, fix });

/** Permissions job-robot must never hold; holding one is a warning, not a failure. */
export const SHOULD_BE_DENIED: readonly Permission[] = [
  { verb: 'get', group: '', resource: 'secrets' },
  { verb: 'list', group: '', resource: 'secrets' },
  { verb: 'create', group: '', resource: 'pods' },
  { verb: 'create', group: '', resource: 'pods', subresource: 'exec' },
  { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'roles' },
  { verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'roles' },
  { verb: 'impersonate', group: '', resource: 'serviceaccounts' },
];

interface Review {
  allowed: boolean;
}

/**
 * Asks whether `user` (a ServiceAccount) may do `p`: SubjectAccessReview when the caller may ask
 * about others (an operator's credentials), else SelfSubjectAccessReview (running as job-robot).
 */
async function reviewAs(kc: KubeConfig, namespace: string, serviceAccount: string, p: Permission): Promise<Review> {
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const resourceAttributes = {
    namespace,
    verb: p.verb,
    group: p.group,
    resource: p.resource,
    ...(p.subresource ? { subresource: p.subresource } : {}),
  };
  try {
    const review = await authz.createSubjectAccessReview({
      body: {
        spec: {
          user: `system:serviceaccount:${namespace}:${serviceAccount}`,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
          resourceAttributes,
        },
      },
    });
    return { allowed: review.status?.allowed === true };
  } catch (err) {
    if (failureClass(kubeFailure(err)) !== 'forbidden') throw err;
    const review = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes } } });
    return { allowed: review.status?.allowed === true };
  }
}

/** The ServiceAccount exists and holds every permission the code uses. */
export async function checkPermissions(kc: KubeConfig, namespace: string, serviceAccount: string): Promise<CheckResult[]> {
  const name = `permissions of ServiceAccount ${namespace}/${serviceAccount}`;
  try {
    await kc.makeApiClient(CoreV1Api).readNamespacedServiceAccount({ name: serviceAccount, namespace });
  } catch (err) {
    const cls = failureClass(kubeFailure(err));
    if (cls === 'not-found') return [fail(name, `ServiceAccount ${serviceAccount} does not exist in ${namespace}`, rbacFix(namespace))];
    if (cls !== 'forbidden') throw err;
  }
  const missing: Permission[] = [];
  for (const p of JOB_ROBOT_PERMISSIONS) if (!(await reviewAs(kc, namespace, serviceAccount, p)).allowed) missing.push(p);
  const results: CheckResult[] = [];
  results.push(
    missing.length
      ? fail(name, `missing: ${missing.map(describePermission).join(', ')}`, rbacFix(namespace))
      : ok(name, `holds ${JOB_ROBOT_PERMISSIONS.map(describePermission).join(', ')}`),
  );
  const excess: Permission[] = [];
  for (const p of SHOULD_BE_DENIED) if ((await reviewAs(kc, namespace, serviceAccount, p)).allowed) excess.push(p);
  if (excess.length) {
    results.push(
      warn(
        `least privilege of ${serviceAccount}`,
        `also holds ${excess.map(describePermission).join(', ')}, which job-robot never uses`,
        'remove the extra grants (RoleBindings or ClusterRoleBindings naming this ServiceAccount)',
      ),
    );
  }
  return results;
}

/** The Knative API groups and resources job-robot's manifests use are served. */
export async function checkKnative(kc: KubeConfig): Promise<CheckResult> {
  const wanted: Record<string, string[]> = {
    'serving.knative.dev': ['services'],
    'eventing.knative.dev': ['brokers', 'triggers'],
    'sources.knative.dev': ['pingsources', 'containersources'],
  };
  const groups = await kc.makeApiClient(ApisApi).getAPIVersions();
  const served = new Set(groups.groups.map((g) => g.name));
  const missing = Object.keys(wanted).filter((g) => !served.has(g));
  if (missing.length) {
    return fail(
      'Knative CRDs',
      `API groups not served: ${missing.join(', ')}`,
      'install Knative Serving and Eventing (https://knative.dev/docs/install/), 1.22 or newer',
    );
  }
  return ok('Knative CRDs', `served: ${Object.entries(wanted).map(([g, rs]) => rs.map((r) => `${r}.${g}`).join(', ')).join(', ')}`);
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

/** The Broker the bridge sends to exists and is Ready. */
export async function checkBroker(kc: KubeConfig, namespace: string, broker: string): Promise<CheckResult> {
  const name = `Broker ${namespace}/${broker}`;
  try {
    const obj = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: 'eventing.knative.dev',
      version: 'v1',
      namespace,
      plural: 'brokers',
      name: broker,
    })) as { status?: { conditions?: Condition[] } };
    const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status === 'True') return ok(name, 'Ready');
    const why = ready ? `${ready.reason ?? 'not ready'}: ${ready.message ?? ''}`.trim() : 'no Ready condition yet';
    return fail(name, `not Ready (${why})`, `kubectl -n ${namespace} describe broker ${broker}; check that Knative Eventing's broker controller runs`);
  } catch (err) {
    const f = kubeFailure(err);
    const cls = failureClass(f);
    if (cls === 'not-found') return fail(name, 'does not exist', `kubectl apply -k config/ (it creates Broker ${broker})`);
    if (cls === 'forbidden') return warn(name, `cannot read brokers with these credentials (${f.message})`, 'run doctor with credentials that may get brokers.eventing.knative.dev');
    throw err;
  }
}

/** Whether `x` is a check's answer rather than what a read returned. */
export const isResult = (x: unknown): x is CheckResult => !!x && typeof x === 'object' && 'status' in x && 'check' in x && 'detail' in x;

/**
 * Runs a read a check needs: a 403 becomes a warning naming what these credentials may not do
 * (`may`, e.g. "get configmaps in namespace x"), a 404 becomes `missing()` when given; anything else
 * is thrown (to `guarded`).
 */
export async function readOrWarn<T>(check: string, may: string, read: () => Promise<T>, missing?: () => CheckResult): Promise<T | CheckResult> {
  try {
    return await read();
  } catch (err) {
    const f = kubeFailure(err);
    const cls = failureClass(f);
    if (cls === 'forbidden') return warn(check, `cannot check: these credentials may not ${may} (${f.message})`, `run doctor with credentials that may ${may}`);
    if (cls === 'not-found' && missing) return missing();
    throw err;
  }
}

/** Wraps a check so an unexpected failure (network, TLS) becomes a failed line, not a crash. */
export async function guarded(check: string, run: () => Promise<CheckResult | CheckResult[]>): Promise<CheckResult[]> {
  try {
    const r = await run();
    return Array.isArray(r) ? r : [r];
  } catch (err) {
    const f = kubeFailure(err);
    return [fail(check, f.code ? `API server answered ${f.code}: ${f.message}` : f.message, 'check the kubeconfig, the API server address and your network')];
  }
}
