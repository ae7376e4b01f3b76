import { expect } from 'chai';
import { BatchV1Api, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { applyManifests, createNamespace, deleteNamespace, serviceAccountConfig, useNamespace, whoAmI } from '../helpers/kube.ts';
import { plainJob } from '../helpers/jobs.ts';
import { readRepoFile } from '../helpers/paths.ts';

/** Resolves to the HTTP status and message of a rejected Kubernetes call. */
async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
    return { code: e.code ?? 0, message: (body as { message?: string })?.message ?? String(err) };
  }
  throw new Error('expected the API server to refuse the call, but it succeeded');
}

describe('control plane: RBAC as the job-robot ServiceAccount', function () {
  const ns = useNamespace('rbac');
  let asRobot: KubeConfig;

  before(async function () {
    await applyManifests(ns.kc, readRepoFile('config/rbac.yaml'), ns.name);
    asRobot = await serviceAccountConfig(ns.kc, ns.name, 'job-robot');
  });

  it('authenticates with a TokenRequest token as system:serviceaccount:<ns>:job-robot', async function () {
    expect(await whoAmI(asRobot)).to.equal(`system:serviceaccount:${ns.name}:job-robot`);
  });

  it('creates a Job through the RoleBinding in config/rbac.yaml', async function () {
    const job = await asRobot.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: ns.name, body: plainJob('allowed') });
    expect(job.metadata?.uid).to.be.a('string').and.not.empty;
  });

  it('without the RoleBinding, gets 403 naming jobs.batch, the verb and the ServiceAccount', async function () {
    const bare = await createNamespace(ns.kc, 'rbac-bare');
    try {
      await ns.kc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace: bare, body: { metadata: { name: 'job-robot' } } });
      const unbound = await serviceAccountConfig(ns.kc, bare, 'job-robot');
      const { code, message } = await rejection(unbound.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: bare, body: plainJob('denied') }));
      expect(code).to.equal(403);
      expect(message).to.equal(
        `jobs.batch is forbidden: User "system:serviceaccount:${bare}:job-robot" cannot create resource "jobs" in API group "batch" in the namespace "${bare}"`,
      );
    } finally {
      await deleteNamespace(ns.kc, bare);
    }
  });

  it('may not create a Pod', async function () {
    const pod = { metadata: { name: 'sneaky' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
    const { code, message } = await rejection(asRobot.makeApiClient(CoreV1Api).createNamespacedPod({ namespace: ns.name, body: pod }));
    expect(code).to.equal(403);
    expect(message).to.contain('cannot create resource "pods"');
  });

  it('may not read a Secret', async function () {
    await ns.kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'creds' }, stringData: { k: 'v' } } });
    const { code, message } = await rejection(asRobot.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace: ns.name, name: 'creds' }));
    expect(code).to.equal(403);
    expect(message).to.contain('cannot get resource "secrets"');
  });

  it('may not create a Job in another namespace', async function () {
    const other = await createNamespace(ns.kc, 'rbac-other');
    try {
      const { code, message } = await rejection(asRobot.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: other, body: plainJob('elsewhere') }));
      expect(code).to.equal(403);
      expect(message).to.contain(`in the namespace "${other}"`);
    } finally {
      await deleteNamespace(ns.kc, other);
    }
  });

  it('holds no cluster-scoped grant: the Role is namespaced and bound by a RoleBinding', async function () {
    const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
    const bindings = await rbac.listClusterRoleBinding();
    const robotSubjects = bindings.items.filter((b) => b.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === 'job-robot'));
    expect(robotSubjects.map((b) => b.metadata?.name)).to.deep.equal([]);
  });
});
