/**
 * Kubernetes helpers for tests, all against the real control plane the global fixture started
 * (or the cluster named by TEST_KUBECONFIG).
 */
import { randomBytes } from 'node:crypto';
import {
  AuthenticationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  loadAllYaml,
  type V1PolicyRule,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

export const FIELD_MANAGER = 'job-robot-test';

/** The admin kubeconfig path the global fixture exported. */
export function adminKubeconfigPath(): string {
  const path = process.env['JOB_ROBOT_TEST_KUBECONFIG'];
  if (!path) throw new Error('JOB_ROBOT_TEST_KUBECONFIG is unset: run through mocha with test/cluster/fixture.ts');
  return path;
}

/** A KubeConfig with cluster-admin rights. */
export function adminConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(adminKubeconfigPath());
  return kc;
}

/** Creates a uniquely named namespace and returns its name. */
export async function createNamespace(kc: KubeConfig, prefix = 'jr'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

export async function deleteNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name, propagationPolicy: 'Background' })
    .catch(() => undefined);
}

/**
 * Registers mocha hooks that give the enclosing suite a fresh namespace.
 * Call inside `describe`; read `.name` in tests.
 */
export function useNamespace(prefix = 'jr'): { name: string; kc: KubeConfig } {
  const ctx = { name: '', kc: undefined as unknown as KubeConfig };
  before(async function () {
    ctx.kc = adminConfig();
    ctx.name = await createNamespace(ctx.kc, prefix);
  });
  after(async function () {
    if (ctx.name) await deleteNamespace(ctx.kc, ctx.name);
  });
  return ctx;
}

/** Parses multi-document YAML into objects, skipping empty documents. */
export function parseManifests(text: string): KubernetesObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length) throw new Error(`invalid YAML: ${doc.errors[0]?.message}`);
      return doc.toJS() as KubernetesObject | null;
    })
    .filter((o): o is KubernetesObject => !!o && typeof o === 'object');
}

/**
 * Applies every document the way `kubectl apply --server-side` does: server-side apply with a
 * field manager, creating what is absent and updating what is there. Namespaced objects without a
 * namespace go into `namespace`. Documents are read with client-node's `loadAllYaml`, which maps
 * them onto its typed models: the generic API serializes through those models and would silently
 * drop keys such as `x-kubernetes-preserve-unknown-fields` given as raw JSON names.
 */
export async function applyManifests(
  kc: KubeConfig,
  text: string,
  namespace?: string,
  opts: { dryRun?: boolean } = {},
): Promise<KubernetesObject[]> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const applied: KubernetesObject[] = [];
  const docs = (loadAllYaml(text) as Array<KubernetesObject | null>).filter((o): o is KubernetesObject => !!o && typeof o === 'object');
  for (const spec of docs) {
    spec.metadata ??= {};
    if (namespace && !spec.metadata.namespace) spec.metadata.namespace = namespace;
    const res = await api.patch(
      spec,
      undefined,
      opts.dryRun ? 'All' : undefined,
      FIELD_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    );
    applied.push(res);
  }
  return applied;
}

/**
 * A KubeConfig that authenticates exactly as a pod running under ServiceAccount `name` would: with
 * a bound token from the TokenRequest API.
 */
export async function serviceAccountConfig(
  admin: KubeConfig,
  namespace: string,
  name: string,
  expirationSeconds = 3600,
): Promise<KubeConfig> {
  const core = admin.makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], expirationSeconds } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, name: 'cluster' }],
    users: [{ name: `${namespace}:${name}`, token }],
    contexts: [{ name: 'sa', cluster: 'cluster', user: `${namespace}:${name}`, namespace }],
    currentContext: 'sa',
  });
  return kc;
}

/** The username the API server gives a ServiceAccount's token, as seen by TokenReview. */
export async function whoAmI(kc: KubeConfig): Promise<string> {
  const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
  return review.status?.userInfo?.username ?? '';
}

/** Polls `probe` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(probe: () => Promise<T | undefined | false | null>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** A Role named `role` with `rules`, bound to ServiceAccount `serviceAccount` (binding of the same name as the account). */
export async function grantRole(kc: KubeConfig, namespace: string, serviceAccount: string, role: string, rules: V1PolicyRule[]): Promise<void> {
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name: role }, rules } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: serviceAccount },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
    },
  });
}

/** What `p` rejects with; fails the test when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
