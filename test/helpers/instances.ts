/**
 * Several job-robots at once, for the scale-out tests: a Job template per instance that can be told
 * apart at a glance, namespaces shaped like config/namespace.yaml, which item a Job carries, and
 * what the API server says the job-robot ServiceAccount may do.
 */
import { AuthorizationV1Api, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { INSTANCE_LABEL } from '../../function/kube/labels.ts';
import { parseManifests } from './kube.ts';
import { readRepoFile } from './paths.ts';
import { deliveredItem, shippedTemplate } from './pipeline.ts';

/** A label only the template sets: which instance's template a Job was built from. */
export const COLOUR_LABEL = 'example.com/colour';

/** The shipped template with its own image, args and label, so a Job shows which instance built it. */
export function colouredTemplate(colour: string): V1Job {
  const t = shippedTemplate();
  t.metadata = { labels: { [COLOUR_LABEL]: colour } };
  const c = t.spec!.template.spec!.containers[0]!;
  c.image = colourImage(colour);
  c.args = [`--colour=${colour}`];
  return t;
}

export const colourImage = (colour: string): string => `registry.example.com/${colour}-worker:1.0`;

/** What tells a Job's instance and template apart: instance label, template label, image, args. */
export function jobLooks(job: V1Job): { instance: string | undefined; colour: string | undefined; image: string | undefined; args: string[] | undefined } {
  const c = job.spec?.template.spec?.containers[0];
  return { instance: job.metadata?.labels?.[INSTANCE_LABEL], colour: job.metadata?.labels?.[COLOUR_LABEL], image: c?.image, args: c?.args };
}

/** The `marker` field of the JSON item a Job received. */
export function markerOf(job: V1Job): string | undefined {
  const item = deliveredItem(job);
  return item ? (JSON.parse(item.bytes.toString('utf8')) as { marker?: string }).marker : undefined;
}

/** Creates a uniquely named namespace with config/namespace.yaml's labels (restricted pod security). */
export async function shippedNamespace(admin: KubeConfig, prefix: string): Promise<string> {
  const shipped = parseManifests(readRepoFile('config/namespace.yaml')).find((o) => o.kind === 'Namespace')!;
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels: { ...shipped.metadata?.labels } } } });
  return name;
}

/** A resource rule as `verb resource.group`, one string per combination, sorted. */
export interface RuleLike {
  verbs: string[];
  apiGroups?: string[] | undefined;
  resources?: string[] | undefined;
}
export const flattenRules = (rules: RuleLike[]): string[] =>
  rules.flatMap((r) => (r.apiGroups ?? ['']).flatMap((g) => (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${v} ${res}${g ? `.${g}` : ''}`)))).sort();

/**
 * What the caller may do in `namespace`, as the API server reports it (SelfSubjectRulesReview),
 * leaving out the self-review rules every authenticated identity holds (system:basic-user).
 */
export async function ownRules(kc: KubeConfig, namespace: string): Promise<string[]> {
  const review = await kc.makeApiClient(AuthorizationV1Api).createSelfSubjectRulesReview({ body: { spec: { namespace } } });
  const selfReview = (r: RuleLike) => (r.apiGroups ?? []).every((g) => g === 'authorization.k8s.io' || g === 'authentication.k8s.io');
  return flattenRules((review.status?.resourceRules ?? []).filter((r) => !selfReview(r)));
}

/**
 * Every ClusterRoleBinding subject that names a ServiceAccount of these namespaces, or the group of
 * all ServiceAccounts of one of them: a cluster-scoped grant to job-robot would show here.
 */
export async function clusterGrantsTo(admin: KubeConfig, namespaces: string[]): Promise<string[]> {
  const bindings = await admin.makeApiClient(RbacAuthorizationV1Api).listClusterRoleBinding();
  const groups = new Set(namespaces.map((ns) => `system:serviceaccounts:${ns}`));
  return bindings.items.flatMap((b) =>
    (b.subjects ?? [])
      .filter((s) => (s.kind === 'ServiceAccount' && (namespaces.includes(s.namespace ?? '') || s.name === 'job-robot')) || (s.kind === 'Group' && groups.has(s.name)))
      .map((s) => `${b.metadata?.name} → ${s.kind} ${s.namespace ?? ''}/${s.name} (${b.roleRef.kind} ${b.roleRef.name})`),
  );
}
