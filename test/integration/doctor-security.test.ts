import { expect } from 'chai';
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { runDoctor, type DoctorOptions } from '../../function/doctor/main.ts';
import type { CheckResult } from '../../function/doctor/checks.ts';
import { adaptedPolicy, applyAdmissionPolicy, LIMITS_FILE, waitPolicyReady, type AppliedPolicy } from '../helpers/admission-policy.ts';
import { adminKubeconfigPath, applyManifests, parseManifests, useNamespace } from '../helpers/kube.ts';
import { installKnativeCrds } from '../helpers/knative.ts';
import { knativeFeatures, type KnativeFeatures } from '../helpers/knative-features.ts';
import { renderConfig } from '../helpers/kubectl.ts';
import { asJobRobot, kubeconfigFile } from '../helpers/launcher.ts';
import { readRepoFile } from '../helpers/paths.ts';

describe('job-robot doctor: the security model\'s checks on a real control plane', function () {
  const ns = useNamespace('doctor-sec');
  let knative: KnativeFeatures;
  let policy: AppliedPolicy;
  let options: DoctorOptions;

  /** The named check's result (checks are named by their first word: Services, OIDC, EventPolicy, admission). */
  const run = async (check: string, opts: Partial<DoctorOptions> = {}): Promise<CheckResult> => {
    const results = await runDoctor({ ...options, ...opts });
    const r = results.find((x) => x.check.startsWith(check));
    if (!r) throw new Error(`no ${check} check in ${JSON.stringify(results)}`);
    return r;
  };

  before(async function () {
    await installKnativeCrds(ns.kc);
    const objects = parseManifests(await renderConfig(ns.name)).filter((o) => o.kind !== 'Namespace');
    await applyManifests(ns.kc, objects.map((o) => JSON.stringify(o)).join('\n---\n'), ns.name);
    knative = await knativeFeatures(ns.kc, { 'authentication-oidc': 'enabled' });
    policy = await applyAdmissionPolicy(ns.kc, ns.name);
    await waitPolicyReady(ns.kc, ns.name, policy.name);
    options = {
      namespace: ns.name,
      kubeconfig: adminKubeconfigPath(),
      serviceAccount: 'job-robot',
      broker: 'job-robot',
      redis: false,
      knativeNamespace: knative.namespace,
      admissionPolicy: policy.name,
    };
  });
  after(async function () {
    await policy?.remove();
    await knative?.remove();
  });

  it('config/ as shipped: all four pass', async function () {
    for (const check of ['Services', 'OIDC', 'EventPolicy', 'admission']) expect(await run(check), check).to.include({ status: 'ok' });
  });

  it('a Service without the cluster-local label fails, naming it, with the label command and the DomainMapping way', async function () {
    const custom = ns.kc.makeApiClient(CustomObjectsApi);
    const target = { group: 'serving.knative.dev', version: 'v1', namespace: ns.name, plural: 'services', name: 'job-robot-reaper' };
    type Service = { metadata: { labels: Record<string, string> } };
    let svc = (await custom.getNamespacedCustomObject(target)) as Service;
    delete svc.metadata.labels['networking.knative.dev/visibility'];
    svc = (await custom.replaceNamespacedCustomObject({ ...target, body: svc })) as Service;
    try {
      const r = await run('Services');
      expect(r.status).to.equal('fail');
      expect(r.detail).to.equal('reachable from outside the cluster: job-robot-reaper (no networking.knative.dev/visibility: cluster-local label)');
      expect(r.fix).to.contain(`kubectl -n ${ns.name} label ksvc job-robot-reaper networking.knative.dev/visibility=cluster-local`).and.contain('DomainMapping');
    } finally {
      svc.metadata.labels['networking.knative.dev/visibility'] = 'cluster-local';
      await custom.replaceNamespacedCustomObject({ ...target, body: svc });
    }
    expect(await run('Services')).to.include({ status: 'ok' });
  });

  it('authentication-oidc disabled or unset fails with the patch that enables it; no config-features says Knative is missing', async function () {
    try {
      await knative.set({ 'authentication-oidc': 'disabled' });
      const off = await run('OIDC');
      expect(off.status).to.equal('fail');
      expect(off.detail).to.contain('authentication-oidc is "disabled"');
      expect(off.fix).to.equal(`kubectl -n ${knative.namespace} patch configmap config-features --type merge -p '{"data":{"authentication-oidc":"enabled"}}'`);
      await knative.set({});
      expect((await run('OIDC')).detail).to.contain("unset (Knative's default: disabled)");
    } finally {
      await knative.set({ 'authentication-oidc': 'enabled' });
    }
    const none = await run('OIDC', { knativeNamespace: `${ns.name}-no-knative` });
    expect(none.status).to.equal('fail');
    expect(none.detail).to.contain('does not exist: is Knative Eventing installed');
  });

  it('EventPolicies for another Broker do not count', async function () {
    const custom = ns.kc.makeApiClient(CustomObjectsApi);
    const target = (name: string) => ({ group: 'eventing.knative.dev', version: 'v1alpha1', namespace: ns.name, plural: 'eventpolicies', name });
    type Policy = { metadata: { name: string }; spec: { to: Array<{ ref: { name: string } }> } };
    // Every shipped policy (the bridge's, the Job source's, the results Trigger's) names the Broker.
    const { items } = (await custom.listNamespacedCustomObject({ group: 'eventing.knative.dev', version: 'v1alpha1', namespace: ns.name, plural: 'eventpolicies' })) as { items: Policy[] };
    expect(items.map((p) => p.metadata.name).sort()).to.deep.equal(['job-robot-broker', 'job-robot-broker-jobs', 'job-robot-broker-results']);
    const moved: Policy[] = [];
    try {
      for (const policy of items) {
        policy.spec.to[0]!.ref.name = 'another-broker';
        moved.push((await custom.replaceNamespacedCustomObject({ ...target(policy.metadata.name), body: policy })) as Policy);
      }
      const r = await run('EventPolicy');
      expect(r.status).to.equal('fail');
      expect(r.detail).to.contain('no EventPolicy names Broker job-robot').and.contain('default-authorization-mode');
    } finally {
      for (const policy of moved) {
        policy.spec.to[0]!.ref.name = 'job-robot';
        await custom.replaceNamespacedCustomObject({ ...target(policy.metadata.name), body: policy });
      }
    }
  });

  it('a binding for another namespace does not apply here', async function () {
    const elsewhere = adaptedPolicy('somewhere-else', `${policy.name}-x`);
    elsewhere.binding.spec!.policyName = policy.name;
    await applyManifests(ns.kc, JSON.stringify(elsewhere.binding));
    try {
      const r = await run('admission');
      expect(r.status, 'the test namespace is still bound').to.equal('ok');
      const other = await run('admission', { namespace: 'default' });
      expect(other.status).to.equal('fail');
      expect(other.detail).to.contain(`its bindings (`).and.contain(`do not select namespace default with the Deny action`);
    } finally {
      await ns.kc.makeApiClient(AdmissionregistrationV1Api).deleteValidatingAdmissionPolicyBinding({ name: elsewhere.name });
    }
  });

  it('the parameter ConfigMap missing, or without a key, fails: the API server would refuse every Job', async function () {
    const core = ns.kc.makeApiClient(CoreV1Api);
    const limits = parseManifests(readRepoFile(LIMITS_FILE))[0] as unknown as { metadata: { name: string }; data: Record<string, string> };
    try {
      await core.replaceNamespacedConfigMap({ name: limits.metadata.name, namespace: ns.name, body: { metadata: { name: limits.metadata.name }, data: { images: 'perl\n' } } });
      const partial = await run('admission');
      expect(partial.status).to.equal('fail');
      expect(partial.detail).to.contain(`ConfigMap ${ns.name}/job-robot-job-limits (the policy's parameters) lacks serviceAccount`);
      await core.deleteNamespacedConfigMap({ name: limits.metadata.name, namespace: ns.name });
      const gone = await run('admission');
      expect(gone.status).to.equal('fail');
      expect(gone.detail).to.contain('does not exist: the API server refuses every Job job-robot makes');
      expect(gone.fix).to.contain('config/job-limits.yaml');
    } finally {
      await applyManifests(ns.kc, readRepoFile(LIMITS_FILE), ns.name);
    }
    expect(await run('admission')).to.include({ status: 'ok' });
  });

  it('run with job-robot\'s own credentials: each check warns, naming the permission it lacks', async function () {
    const robot = kubeconfigFile(await asJobRobot(ns.kc, ns.name));
    try {
      const opts = { kubeconfig: robot.path };
      const services = await run('Services', opts);
      expect(services).to.include({ status: 'warn' });
      expect(services.detail).to.contain(`may not list services.serving.knative.dev in namespace ${ns.name}`);
      const oidc = await run('OIDC', opts);
      expect(oidc).to.include({ status: 'warn' });
      expect(oidc.detail).to.contain(`may not get configmaps in namespace ${knative.namespace} (ConfigMap ${knative.namespace}/config-features)`);
      expect(oidc.fix).to.contain(`get configmaps in namespace ${knative.namespace}`);
      const ep = await run('EventPolicy', opts);
      expect(ep).to.include({ status: 'warn' });
      expect(ep.detail).to.contain(`may not list eventpolicies.eventing.knative.dev in namespace ${ns.name}`);
      const vap = await run('admission', opts);
      expect(vap).to.include({ status: 'warn' });
      expect(vap.detail).to.contain('may not get validatingadmissionpolicies.admissionregistration.k8s.io (cluster-scoped)');
    } finally {
      robot.remove();
    }
  });
});
