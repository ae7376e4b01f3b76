import { expect } from 'chai';
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { asJobRobot } from '../helpers/launcher.ts';
import { useNamespace } from '../helpers/kube.ts';

interface Ask {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
}

async function allowed(kc: KubeConfig, namespace: string, a: Ask): Promise<boolean> {
  const review = await kc.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
    body: { spec: { resourceAttributes: { namespace, verb: a.verb, group: a.group, resource: a.resource, ...(a.subresource ? { subresource: a.subresource } : {}) } } },
  });
  return review.status?.allowed === true;
}

const jobs = (verb: string, subresource?: string): Ask => ({ verb, group: 'batch', resource: 'jobs', ...(subresource ? { subresource } : {}) });
const core = (verb: string, resource: string, subresource?: string): Ask => ({ verb, group: '', resource, ...(subresource ? { subresource } : {}) });

describe('config/rbac.yaml: job-robot holds exactly what the launcher and the reaper use', function () {
  const ns = useNamespace('role');
  let robot: KubeConfig;

  before(async function () {
    robot = await asJobRobot(ns.kc, ns.name);
  });

  it('granted: jobs create, get, list, watch (launcher) and list, delete (reaper)', async function () {
    for (const verb of ['create', 'get', 'list', 'watch', 'delete']) expect(await allowed(robot, ns.name, jobs(verb)), verb).to.equal(true);
  });

  it('denied: everything else on jobs, and pods, secrets, configmaps, tokens, other workloads', async function () {
    const denied: Ask[] = [
      jobs('update'),
      jobs('patch'),
      jobs('deletecollection'),
      jobs('update', 'status'),
      jobs('patch', 'status'),
      { verb: 'create', group: 'batch', resource: 'cronjobs' },
      core('get', 'pods'),
      core('list', 'pods'),
      core('create', 'pods'),
      core('delete', 'pods'),
      core('get', 'pods', 'log'),
      core('create', 'pods', 'exec'),
      core('get', 'secrets'),
      core('list', 'secrets'),
      core('get', 'configmaps'),
      core('create', 'serviceaccounts', 'token'),
      core('create', 'events'),
      { verb: 'create', group: 'apps', resource: 'deployments' },
      { verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'roles' },
    ];
    const granted = [];
    for (const a of denied) if (await allowed(robot, ns.name, a)) granted.push(a);
    expect(granted).to.deep.equal([]);
  });
});
