import { expect } from 'chai';
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { describePermission, JOB_ROBOT_PERMISSIONS, type Permission } from '../../function/kube/permissions.ts';
import { applyManifests, createNamespace, deleteNamespace, eventually, parseManifests, useNamespace } from '../helpers/kube.ts';
import { readRepoFile } from '../helpers/paths.ts';

/** Asks the API server, as admin, whether the job-robot ServiceAccount may do `p` in `namespace`. */
async function allowed(kc: KubeConfig, saNamespace: string, p: Permission, namespace: string | undefined = saNamespace): Promise<boolean> {
  const review = await kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${saNamespace}:job-robot`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${saNamespace}`, 'system:authenticated'],
        resourceAttributes: { ...(namespace ? { namespace } : {}), verb: p.verb, group: p.group, resource: p.resource, ...(p.subresource ? { subresource: p.subresource } : {}) },
      },
    },
  });
  return review.status?.allowed === true;
}

const p = (verb: string, group: string, resource: string, subresource?: string): Permission => ({ verb, group, resource, ...(subresource ? { subresource } : {}) });

/** What job-robot must never be able to do in its own namespace. */
const DENIED_HERE: Permission[] = [
  p('create', '', 'pods'),
  p('get', '', 'pods'),
  p('list', '', 'pods'),
  p('delete', '', 'pods'),
  p('create', '', 'pods', 'exec'),
  p('get', '', 'pods', 'log'),
  p('get', '', 'secrets'),
  p('list', '', 'secrets'),
  p('watch', '', 'secrets'),
  p('get', '', 'configmaps'),
  p('create', '', 'configmaps'),
  p('create', '', 'serviceaccounts', 'token'),
  p('impersonate', '', 'serviceaccounts'),
  p('update', 'batch', 'jobs'),
  p('patch', 'batch', 'jobs'),
  p('deletecollection', 'batch', 'jobs'),
  p('update', 'batch', 'jobs', 'status'),
  p('create', 'batch', 'cronjobs'),
  p('create', 'apps', 'deployments'),
  p('create', 'rbac.authorization.k8s.io', 'roles'),
  p('escalate', 'rbac.authorization.k8s.io', 'roles'),
  p('bind', 'rbac.authorization.k8s.io', 'roles'),
  p('create', 'rbac.authorization.k8s.io', 'rolebindings'),
];

/** Cluster-scoped permissions job-robot must never hold. */
const DENIED_CLUSTER: Permission[] = [
  p('list', '', 'namespaces'),
  p('create', '', 'namespaces'),
  p('list', '', 'nodes'),
  p('create', 'rbac.authorization.k8s.io', 'clusterroles'),
  p('create', 'rbac.authorization.k8s.io', 'clusterrolebindings'),
  p('list', 'apiextensions.k8s.io', 'customresourcedefinitions'),
  p('impersonate', '', 'users'),
];

describe('config/rbac.yaml: the RBAC matrix of the job-robot ServiceAccount', function () {
  const ns = useNamespace('matrix');
  let other: string;

  before(async function () {
    await applyManifests(ns.kc, readRepoFile('config/rbac.yaml'), ns.name);
    other = await createNamespace(ns.kc, 'matrix-other');
  });
  after(async function () {
    if (other) await deleteNamespace(ns.kc, other);
  });

  it('the Role grants exactly the permissions the code uses (function/kube/permissions.ts), no more, no less', function () {
    const role = parseManifests(readRepoFile('config/rbac.yaml')).find((o) => o.kind === 'Role') as unknown as {
      rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
    };
    const granted = role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${res}.${g}`))));
    const used = JOB_ROBOT_PERMISSIONS.map((q) => `${q.verb} ${q.resource}.${q.group}`);
    expect(granted.sort()).to.deep.equal([...used].sort());
  });

  for (const perm of JOB_ROBOT_PERMISSIONS) {
    it(`allows what the code calls: ${describePermission(perm)}`, async function () {
      expect(await allowed(ns.kc, ns.name, perm)).to.equal(true);
    });
  }

  it(`denies ${DENIED_HERE.length} permissions job-robot never uses in its own namespace`, async function () {
    const granted = [];
    for (const perm of DENIED_HERE) if (await allowed(ns.kc, ns.name, perm)) granted.push(describePermission(perm));
    expect(granted).to.deep.equal([]);
  });

  it('denies every permission in another namespace, even those it holds at home', async function () {
    const granted = [];
    for (const perm of JOB_ROBOT_PERMISSIONS) if (await allowed(ns.kc, ns.name, perm, other)) granted.push(describePermission(perm));
    expect(granted).to.deep.equal([]);
  });

  it(`denies ${DENIED_CLUSTER.length} cluster-scoped permissions`, async function () {
    const granted = [];
    for (const perm of DENIED_CLUSTER) if (await allowed(ns.kc, ns.name, perm, undefined)) granted.push(describePermission(perm));
    expect(granted).to.deep.equal([]);
  });

  it('the matrix can fail: a broad grant added beside the Role is caught', async function () {
    const wide = await createNamespace(ns.kc, 'matrix-wide');
    try {
      await applyManifests(ns.kc, readRepoFile('config/rbac.yaml'), wide);
      await applyManifests(
        ns.kc,
        [
          'apiVersion: rbac.authorization.k8s.io/v1',
          'kind: RoleBinding',
          'metadata: {name: too-much}',
          'roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}',
          'subjects: [{kind: ServiceAccount, name: job-robot}]',
        ].join('\n'),
        wide,
      );
      // `edit` is an aggregated ClusterRole: its rules arrive from the aggregation controller.
      await eventually(() => allowed(ns.kc, wide, p('get', '', 'secrets')), 30_000, 'the edit grant to take effect');
    } finally {
      await deleteNamespace(ns.kc, wide);
    }
  });
});
