import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { runDoctor } from '../../function/doctor/main.ts';
import type { CheckResult } from '../../function/doctor/checks.ts';
import { adminKubeconfigPath, applyManifests, eventually, parseManifests, useNamespace } from '../helpers/kube.ts';
import { installKnativeCrds } from '../helpers/knative.ts';
import { knativeFeatures, type KnativeFeatures } from '../helpers/knative-features.ts';
import { applyAdmissionPolicy, waitPolicyReady, type AppliedPolicy } from '../helpers/admission-policy.ts';
import { renderConfig } from '../helpers/kubectl.ts';
import { ROOT } from '../helpers/paths.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const byCheck = (results: CheckResult[]) => Object.fromEntries(results.map((r) => [r.check.replace(/ .*/, ''), r]));

/** Stands in for Knative's broker controller: marks the Broker Ready through its status subresource. */
async function markBrokerReady(kc: ReturnType<typeof useNamespace>['kc'], namespace: string): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const broker = (await custom.getNamespacedCustomObject({ group: 'eventing.knative.dev', version: 'v1', namespace, plural: 'brokers', name: 'job-robot' })) as Record<string, unknown>;
  broker['status'] = { conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString() }] };
  await custom.replaceNamespacedCustomObjectStatus({ group: 'eventing.knative.dev', version: 'v1', namespace, plural: 'brokers', name: 'job-robot', body: broker });
}

function doctorCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'function/cli.ts'), 'doctor', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('job-robot doctor on a real control plane', function () {
  const ns = useNamespace('doctor');
  let redis: RedisServer;
  let knative: KnativeFeatures;
  let policy: AppliedPolicy | undefined;

  before(async function () {
    redis = await startRedis();
    await installKnativeCrds(ns.kc);
    // Established is not yet servable: a list answers 429 "storage is (re)initializing" for a moment.
    const custom = ns.kc.makeApiClient(CustomObjectsApi);
    for (const [group, version, plural] of [['serving.knative.dev', 'v1', 'services'], ['eventing.knative.dev', 'v1alpha1', 'eventpolicies']] as const) {
      await eventually(() => custom.listNamespacedCustomObject({ group, version, namespace: ns.name, plural }), 30_000, `${plural}.${group} to be served`);
    }
    knative = await knativeFeatures(ns.kc, { 'authentication-oidc': 'enabled' });
  });
  after(async function () {
    await redis?.stop();
    await policy?.remove();
    await knative?.remove();
  });

  it('an empty namespace: permissions, Broker, EventPolicy, Services, admission policy and template fail with their fixes; an unreachable Redis fails; exit 1', async function () {
    const results = await runDoctor(
      { namespace: ns.name, kubeconfig: adminKubeconfigPath(), serviceAccount: 'job-robot', broker: 'job-robot', knativeNamespace: knative.namespace, admissionPolicy: `job-robot-jobs-${ns.name}`, redis: true },
      { REDIS_URL: 'redis://127.0.0.1:1/0' },
    );
    const r = byCheck(results);
    expect(r['permissions']).to.include({ status: 'fail' });
    expect(r['permissions']!.detail).to.contain('does not exist');
    expect(r['permissions']!.fix).to.contain('config/rbac.yaml');
    expect(r['Knative']).to.include({ status: 'ok' });
    expect(r['Broker']).to.include({ status: 'fail' });
    expect(r['Broker']!.fix).to.contain('kubectl apply -k config/');
    expect(r['Job']).to.include({ status: 'fail' });
    expect(r['Redis']).to.include({ status: 'fail' });
    expect(r['EventPolicy']).to.include({ status: 'fail' });
    expect(r['EventPolicy']!.detail).to.contain('no EventPolicy names Broker job-robot');
    expect(r['Services']).to.include({ status: 'fail', detail: `no job-robot Knative Services in ${ns.name}` });
    expect(r['OIDC']).to.include({ status: 'ok' });
    expect(r['admission']).to.include({ status: 'fail' });
    expect(r['admission']!.detail).to.contain('does not exist');
    expect(r['admission']!.fix).to.contain('kubectl apply -f config/cluster/admission-policy.yaml');

    const cli = await doctorCli(['--namespace', ns.name, '--kubeconfig', adminKubeconfigPath()], { REDIS_URL: 'redis://127.0.0.1:1/0' });
    expect(cli.code, cli.out).to.equal(1);
    expect(cli.out).to.match(/^FAIL {2}permissions of ServiceAccount/m).and.match(/fix: kubectl apply/);
  });

  it('config/ applied, the Broker Ready and Redis up: every check passes; exit 0', async function () {
    const objects = parseManifests(await renderConfig(ns.name)).filter((o) => o.kind !== 'Namespace');
    await applyManifests(ns.kc, objects.map((o) => JSON.stringify(o)).join('\n---\n'), ns.name);
    await markBrokerReady(ns.kc, ns.name);
    policy = await applyAdmissionPolicy(ns.kc, ns.name);
    // The doctor's template dry run goes through the binding too (refused until its ConfigMap is seen).
    await waitPolicyReady(ns.kc, ns.name, policy.name);
    const security = { knativeNamespace: knative.namespace, admissionPolicy: policy.name };
    const securityArgs = ['--knative-namespace', knative.namespace, '--admission-policy', policy.name];
    await eventually(async () => (await ns.kc.makeApiClient(CoreV1Api).readNamespacedServiceAccount({ name: 'job-robot', namespace: ns.name })).metadata?.uid);

    const results = await runDoctor(
      { namespace: ns.name, kubeconfig: adminKubeconfigPath(), serviceAccount: 'job-robot', broker: 'job-robot', redis: true, ...security },
      { REDIS_URL: redis.url },
    );
    expect(results.filter((x) => x.status !== 'ok'), JSON.stringify(results, null, 1)).to.deep.equal([]);
    const r = byCheck(results);
    expect(r['Job']!.detail).to.contain(`ConfigMap ${ns.name}/job-robot-job-template`);
    expect(r['Services']!.detail).to.equal('cluster-local: job-robot-dead-letter, job-robot-launcher, job-robot-reaper, job-robot-results');
    expect(r['EventPolicy']!.detail).to.equal(
      'job-robot-broker, job-robot-broker-jobs, job-robot-broker-results: only ContainerSource/job-robot-bridge, ApiServerSource/job-robot-jobs, Trigger/job-robot-results may send',
    );
    expect(r['admission']!.detail).to.equal(
      `bound by ${policy.name} to namespace ${ns.name}; ConfigMap ${ns.name}/job-robot-job-limits: pods run as job-robot-job, 1 allowed image line(s)`,
    );

    const cli = await doctorCli(['--namespace', ns.name, '--kubeconfig', adminKubeconfigPath(), ...securityArgs], { REDIS_URL: redis.url });
    expect(cli.code, cli.out).to.equal(0);
    expect(cli.out).to.not.match(/^FAIL/m);
  });

  it('warns when job-robot holds more than it uses', async function () {
    await applyManifests(
      ns.kc,
      'apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: too-much}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\nsubjects: [{kind: ServiceAccount, name: job-robot}]\n',
      ns.name,
    );
    const results = await eventually(async () => {
      const rs = await runDoctor({ namespace: ns.name, kubeconfig: adminKubeconfigPath(), serviceAccount: 'job-robot', broker: 'job-robot', redis: false });
      return rs.some((x) => x.status === 'warn') ? rs : undefined;
    });
    const warning = results.find((x) => x.status === 'warn')!;
    expect(warning.check).to.contain('least privilege');
    expect(warning.detail).to.contain('get secrets');
  });

  it('a kubeconfig that cannot be read: exit 78 naming the flag or variable, no stack trace', async function () {
    const flag = await doctorCli(['--namespace', ns.name, '--kubeconfig', '/nonexistent/kubeconfig'], {});
    expect(flag.code, flag.out).to.equal(78);
    expect(flag.out).to.contain('--kubeconfig: cannot load /nonexistent/kubeconfig').and.not.contain('    at ');
    const variable = await doctorCli(['--namespace', ns.name], { KUBECONFIG: '/nonexistent/kubeconfig' });
    expect(variable.code, variable.out).to.equal(78);
    expect(variable.out).to.contain('KUBECONFIG: cannot load /nonexistent/kubeconfig');
  });

  it('a broken template in the ConfigMap fails the dry run with the API server\'s reason', async function () {
    await applyManifests(
      ns.kc,
      [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata: {name: job-robot-job-template}',
        'data:',
        '  job.yaml: |',
        '    apiVersion: batch/v1',
        '    kind: Job',
        '    spec:',
        '      template:',
        '        spec:',
        '          restartPolicy: Always',
        '          containers: [{name: c, image: busybox}]',
      ].join('\n'),
      ns.name,
    );
    const r = byCheck(await runDoctor({ namespace: ns.name, kubeconfig: adminKubeconfigPath(), serviceAccount: 'job-robot', broker: 'job-robot', redis: false }));
    expect(r['Job']).to.include({ status: 'fail' });
    expect(r['Job']!.detail).to.match(/restartPolicy/);
  });

  it('reports Knative missing when its API groups are not served', async function () {
    const ext = ns.kc.makeApiClient(ApiextensionsV1Api);
    // Every CRD of the group: EventPolicy's keeps eventing.knative.dev served on its own.
    const crds = ['brokers.eventing.knative.dev', 'triggers.eventing.knative.dev', 'eventpolicies.eventing.knative.dev'];
    for (const name of crds) await ext.deleteCustomResourceDefinition({ name });
    try {
      const r = await eventually(async () => {
        const rs = byCheck(await runDoctor({ namespace: ns.name, kubeconfig: adminKubeconfigPath(), serviceAccount: 'job-robot', broker: 'job-robot', redis: false }));
        return rs['Knative']?.status === 'fail' ? rs : undefined;
      });
      expect(r['Knative']!.detail).to.contain('eventing.knative.dev');
      expect(r['Knative']!.fix).to.contain('install Knative');
    } finally {
      await eventually(async () => {
        const left = await ext.listCustomResourceDefinition();
        return !left.items.some((c) => crds.includes(c.metadata!.name!));
      });
      await installKnativeCrds(ns.kc);
    }
  });
});
