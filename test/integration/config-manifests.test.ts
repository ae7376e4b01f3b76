import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { adminKubeconfigPath, parseManifests, useNamespace } from '../helpers/kube.ts';
import { installKnativeCrds } from '../helpers/knative.ts';
import { kubectl, renderConfig } from '../helpers/kubectl.ts';
import { readRepoFile } from '../helpers/paths.ts';
import { loadBridgeConfig } from '../../function/bridge/config.ts';
import { parseTemplate } from '../../function/kube/job-template.ts';
import { buildJob } from '../../function/launcher/job.ts';
import { DEFAULT_SENDERS, oidcServiceAccount } from '../../function/auth/senders.ts';
import {
  APISERVER_ADD_TYPE,
  APISERVER_DELETE_TYPE,
  APISERVER_RESOURCE_PREFIX,
  APISERVER_UPDATE_TYPE,
  JOB_FAILED_TYPE,
  JOB_OUTCOME_PREFIX,
  JOB_SUCCEEDED_TYPE,
} from '../../function/events.ts';
import { loadResultsConfig } from '../../function/results/config.ts';

interface Container {
  name: string;
  image?: string;
  securityContext?: Record<string, unknown>;
  env?: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
}

/** Every container of every pod template in a rendered object, wherever the kind keeps it. */
function containers(obj: KubernetesObject): Container[] {
  const o = obj as unknown as { spec?: { template?: { spec?: { containers?: Container[] } } }; data?: Record<string, string> };
  return o.spec?.template?.spec?.containers ?? [];
}

/** Server-side dry-run create with strict field validation, by the kubectl built from the same Kubernetes module. */
async function dryRunCreate(objects: KubernetesObject[]): Promise<{ code: number | null; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-dryrun-'));
  try {
    const file = join(dir, 'all.yaml');
    writeFileSync(file, objects.map((o) => JSON.stringify(o)).join('\n---\n'));
    const run = await kubectl(['--kubeconfig', adminKubeconfigPath(), 'create', '--dry-run=server', '--validate=strict', '-o', 'name', '-f', file]);
    return { code: run.code, out: run.stdout + run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('config/: kustomize renders manifests the API server accepts', function () {
  const ns = useNamespace('config');
  let rendered: KubernetesObject[];

  before(async function () {
    await installKnativeCrds(ns.kc);
    rendered = parseManifests(await renderConfig(ns.name)).filter((o) => o.kind !== 'Namespace');
  });

  it('renders every part: RBAC, template, launcher, reaper, PingSource, Broker, Trigger, bridge, dead-letter sink, results', function () {
    const kinds = rendered.map((o) => `${o.kind}/${o.metadata?.name}`).sort();
    expect(kinds).to.include.members([
      'ServiceAccount/job-robot',
      'ServiceAccount/job-robot-job',
      'Role/job-robot',
      'RoleBinding/job-robot',
      'ConfigMap/job-robot-job-template',
      'ConfigMap/job-robot-job-limits',
      'ConfigMap/job-robot-queue',
      'Service/job-robot-launcher',
      'Service/job-robot-reaper',
      'Service/job-robot-dead-letter',
      'PingSource/job-robot-reaper',
      'Broker/job-robot',
      'Trigger/job-robot-launcher',
      'ContainerSource/job-robot-bridge',
      'Secret/job-robot-redis',
      'EventPolicy/job-robot-broker',
      'NetworkPolicy/job-robot-jobs',
      'Service/job-robot-results',
      'ApiServerSource/job-robot-jobs',
      'ServiceAccount/job-robot-jobs-source',
      'Role/job-robot-jobs-source',
      'RoleBinding/job-robot-jobs-source',
      'Trigger/job-robot-results',
      'EventPolicy/job-robot-broker-jobs',
      'EventPolicy/job-robot-broker-results',
    ]);
  });

  it('every object passes a server-side dry-run create with strict field validation', async function () {
    const { code, out } = await dryRunCreate(rendered);
    expect(code, out).to.equal(0);
    expect(out.trim().split('\n')).to.have.length(rendered.length);
  });

  it('the dry run can fail: an unknown field in a Knative Service is refused', async function () {
    const svc = structuredClone(rendered.find((o) => o.kind === 'Service' && o.metadata?.name === 'job-robot-launcher')!);
    (svc as unknown as { spec: Record<string, unknown> }).spec['replicas'] = 3;
    const { code, out } = await dryRunCreate([svc]);
    expect(code).to.not.equal(0);
    expect(out).to.match(/unknown field "spec.replicas"/);
  });

  it('the dry run can fail: a field the EventPolicy CRD does not know is refused', async function () {
    const policy = structuredClone(rendered.find((o) => o.kind === 'EventPolicy')!);
    (policy as unknown as { spec: { from: Array<Record<string, unknown>> } }).spec.from[0]!['identity'] = 'x';
    const { code, out } = await dryRunCreate([policy]);
    expect(code).to.not.equal(0);
    expect(out).to.match(/unknown field "spec.from\[0\].identity"/);
  });

  it('every Knative Service is cluster-local: reachable inside the cluster only', function () {
    const services = rendered.filter((o) => o.kind === 'Service' && o.apiVersion === 'serving.knative.dev/v1');
    expect(services.map((o) => o.metadata?.name).sort()).to.deep.equal(['job-robot-dead-letter', 'job-robot-launcher', 'job-robot-reaper', 'job-robot-results']);
    for (const svc of services) expect(svc.metadata?.labels?.['networking.knative.dev/visibility'], svc.metadata?.name).to.equal('cluster-local');
    expect(rendered.filter((o) => o.kind === 'DomainMapping')).to.deep.equal([]);
  });

  it('the EventPolicies let only the bridge, the Job source and the results Trigger (refs, no raw subject) send to the Broker, each only its own events', function () {
    type Policy = {
      metadata: { name: string };
      spec: { to: Array<{ ref?: Record<string, string> }>; from: Array<{ ref?: Record<string, string>; sub?: string }>; filters?: unknown };
    };
    const policies = rendered.filter((o) => o.kind === 'EventPolicy') as unknown as Policy[];
    const broker = rendered.find((o) => o.kind === 'Broker')!;
    const refOf = (kind: string, name: string) => {
      const o = rendered.find((x) => x.kind === kind && x.metadata?.name === name)!;
      return { ref: { apiVersion: o.apiVersion, kind, name } };
    };
    for (const policy of policies) {
      expect(policy.spec.to, policy.metadata.name).to.deep.equal([{ ref: { apiVersion: broker.apiVersion, kind: 'Broker', name: broker.metadata!.name } }]);
    }
    const byName = Object.fromEntries(policies.map((p) => [p.metadata.name, { from: p.spec.from, filters: p.spec.filters }]));
    expect(byName).to.deep.equal({
      'job-robot-broker': { from: [refOf('ContainerSource', 'job-robot-bridge')], filters: undefined },
      'job-robot-broker-jobs': { from: [refOf('ApiServerSource', 'job-robot-jobs')], filters: [{ prefix: { type: APISERVER_RESOURCE_PREFIX } }] },
      'job-robot-broker-results': { from: [refOf('Trigger', 'job-robot-results')], filters: [{ prefix: { type: JOB_OUTCOME_PREFIX } }] },
    });
    // The outcome types the results function answers with are the ones its policy lets through.
    for (const type of [JOB_SUCCEEDED_TYPE, JOB_FAILED_TYPE]) expect(type.startsWith(JOB_OUTCOME_PREFIX), type).to.equal(true);
  });

  it('the NetworkPolicy selects the pods of every Job the launcher makes and no job-robot part, and lets them reach cluster DNS only', function () {
    const np = rendered.find((o) => o.kind === 'NetworkPolicy') as unknown as {
      spec: { podSelector: { matchLabels: Record<string, string>; matchExpressions?: unknown }; policyTypes: string[]; egress: Array<{ to: unknown[]; ports: unknown[] }> };
    };
    expect(np.spec.podSelector.matchExpressions).to.equal(undefined);
    const selects = (labels: Record<string, string> | undefined) => Object.entries(np.spec.podSelector.matchLabels).every(([k, v]) => labels?.[k] === v);
    const [templateMap] = rendered.filter((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'job-robot-job-template') as unknown as Array<{ data: Record<string, string> }>;
    const template = parseTemplate(templateMap!.data['job.yaml']!);
    const settings = { prefix: 'job-robot-', ttlSeconds: 1, serviceAccount: 'job-robot-job' };
    for (const instance of [undefined, 'blue']) {
      const job = buildJob(template, { ...settings, instance }, { source: '/s', id: '1', type: 't', env: [] });
      expect(selects(job.spec!.template.metadata?.labels), `Job pods (instance ${instance})`).to.equal(true);
    }
    const parts = rendered.filter((o) => ['Service', 'ContainerSource'].includes(o.kind!) && o.apiVersion !== 'v1');
    expect(parts).to.have.length(5);
    for (const part of parts) {
      const labels = (part as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template.metadata.labels;
      expect(selects(labels), `${part.kind}/${part.metadata?.name}`).to.equal(false);
    }
    expect(np.spec.policyTypes).to.deep.equal(['Egress']);
    expect(np.spec.egress).to.deep.equal([
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
        ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
      },
    ]);
  });

  it('the cluster-scoped admission policy and binding (not in the kustomization) pass a server-side dry-run create', async function () {
    const cluster = parseManifests(readRepoFile('config/cluster/admission-policy.yaml'));
    expect(cluster.map((o) => o.kind)).to.deep.equal(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    expect(rendered.filter((o) => o.kind?.startsWith('ValidatingAdmissionPolicy'))).to.deep.equal([]);
    const { code, out } = await dryRunCreate(cluster);
    expect(code, out).to.equal(0);
  });

  it('the dry run can fail: an admission policy whose CEL does not compile is refused', async function () {
    const [policy] = parseManifests(readRepoFile('config/cluster/admission-policy.yaml')) as unknown as Array<{ spec: { validations: Array<{ expression: string }> } }>;
    policy!.spec.validations[1]!.expression = 'object.metadata.labels[';
    const { code, out } = await dryRunCreate([policy as unknown as KubernetesObject]);
    expect(code).to.not.equal(0);
    expect(out).to.match(/spec.validations\[1\].expression.*compilation failed/);
  });

  it('the Namespace object passes a dry-run create and enforces the restricted pod security level', async function () {
    const [nsObj] = parseManifests(readRepoFile('config/namespace.yaml'));
    expect(nsObj!.metadata?.labels?.['pod-security.kubernetes.io/enforce']).to.equal('restricted');
    const { code, out } = await dryRunCreate([nsObj!]);
    expect(code, out).to.equal(0);
  });

  it('every job-robot container uses the one image set in kustomization.yaml', function () {
    const images = new Set(
      rendered
        .filter((o) => o.kind !== 'ConfigMap')
        .flatMap(containers)
        .map((c) => c.image),
    );
    expect([...images]).to.deep.equal(['ghcr.io/job-robot/job-robot:0.1.0']);
  });

  it('every job-robot container is hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp', function () {
    const all = rendered.flatMap((o) => containers(o).map((c) => ({ owner: `${o.kind}/${o.metadata?.name}`, c })));
    expect(all.length).to.be.at.least(4);
    for (const { owner, c } of all) {
      expect(c.securityContext, owner).to.deep.include({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(c.securityContext?.['capabilities'], owner).to.deep.equal({ drop: ['ALL'] });
      expect(c.securityContext?.['seccompProfile'], owner).to.deep.equal({ type: 'RuntimeDefault' });
    }
  });

  it('the functions scale to zero and run as job-robot; the dead-letter sink and the results function run as identities bound to no Role; the bridge holds no API token', function () {
    const svc = (name: string) => rendered.find((o) => o.kind === 'Service' && o.metadata?.name === name) as unknown as {
      spec: { template: { metadata: { annotations: Record<string, string> }; spec: Record<string, unknown> } };
    };
    for (const name of ['job-robot-launcher', 'job-robot-reaper']) {
      expect(svc(name).spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'], name).to.equal('0');
      expect(svc(name).spec.template.spec['serviceAccountName'], name).to.equal('job-robot');
    }
    expect(svc('job-robot-results').spec.template.metadata.annotations['autoscaling.knative.dev/min-scale']).to.equal('0');
    // Their tokens read only the ServiceAccount issuer's keys, to verify the callers' OIDC tokens.
    expect(svc('job-robot-dead-letter').spec.template.spec['serviceAccountName']).to.equal('job-robot-dead-letter');
    expect(svc('job-robot-results').spec.template.spec['serviceAccountName']).to.equal('job-robot-results');
    const bound = rendered.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding').flatMap((b) => (b as unknown as { subjects?: { name: string }[] }).subjects ?? []);
    expect(bound.map((s) => s.name)).to.not.include('job-robot-dead-letter');
    expect(bound.map((s) => s.name)).to.not.include('job-robot-results');
    const bridge = rendered.find((o) => o.kind === 'ContainerSource') as unknown as { spec: { template: { spec: Record<string, unknown> } } };
    expect(bridge.spec.template.spec['automountServiceAccountToken']).to.equal(false);
  });

  it('the bridge, the dead-letter sink, the results function and the reaper read one queue ConfigMap and one Redis Secret, so they cannot disagree', function () {
    const queue = rendered.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'job-robot-queue') as unknown as { data: Record<string, string> };
    expect(queue.data).to.deep.equal({ QUEUE_KEY: 'job-robot:queue', MODE: 'list' });
    const secret = rendered.find((o) => o.kind === 'Secret' && o.metadata?.name === 'job-robot-redis') as unknown as { data: Record<string, string> };
    expect(Object.keys(secret.data), 'redis.env: only the uncommented variable').to.deep.equal(['REDIS_URL']);
    const owners = ['ContainerSource/job-robot-bridge', 'Service/job-robot-dead-letter', 'Service/job-robot-reaper', 'Service/job-robot-results'];
    for (const owner of owners) {
      const obj = rendered.find((o) => `${o.kind}/${o.metadata?.name}` === owner)!;
      const [c] = containers(obj);
      expect(c!.envFrom, owner).to.deep.equal([{ configMapRef: { name: 'job-robot-queue' } }, { secretRef: { name: 'job-robot-redis' } }]);
      for (const name of ['QUEUE_KEY', 'MODE', 'REDIS_URL']) expect(c!.env?.map((e) => e.name) ?? [], `${owner} must not set ${name} again`).to.not.include(name);
    }
  });

  it('the Trigger takes only the events this bridge marks, so several job-robots can share a Broker', function () {
    const source = rendered.find((o) => o.kind === 'ContainerSource') as unknown as { spec: { ceOverrides?: { extensions?: Record<string, string> } } };
    const trigger = rendered.find((o) => o.kind === 'Trigger' && o.metadata?.name === 'job-robot-launcher') as unknown as { spec: { filter: { attributes: Record<string, string> } } };
    const marks = source.spec.ceOverrides?.extensions ?? {};
    expect(Object.keys(marks)).to.deep.equal(['jobrobot']);
    expect(trigger.spec.filter.attributes).to.deep.equal({ type: 'dev.job-robot.queue.item', jobrobot: marks['jobrobot'] });
    // The bridge must accept the mark as Knative passes it (K_CE_OVERRIDES).
    const config = loadBridgeConfig({ K_SINK: 'http://broker', HOSTNAME: 'b', K_CE_OVERRIDES: JSON.stringify(source.spec.ceOverrides) });
    expect(config.event.extensions).to.deep.equal(marks);
  });

  it('the Job source watches the Jobs the launcher makes, as an identity that may only read Jobs, and sends them to the Broker with this instance\'s mark', function () {
    const source = rendered.find((o) => o.kind === 'ApiServerSource') as unknown as {
      spec: {
        mode: string;
        resources: Array<{ apiVersion: string; kind: string; selector: { matchLabels: Record<string, string> } }>;
        serviceAccountName: string;
        ceOverrides: { extensions: Record<string, string> };
        sink: { ref: Record<string, string> };
      };
    };
    const bridge = rendered.find((o) => o.kind === 'ContainerSource') as unknown as { spec: { ceOverrides: { extensions: Record<string, string> } } };
    expect(source.spec.mode).to.equal('Resource');
    expect(source.spec.resources.map((r) => `${r.apiVersion}/${r.kind}`)).to.deep.equal(['batch/v1/Job']);
    const [templateMap] = rendered.filter((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'job-robot-job-template') as unknown as Array<{ data: Record<string, string> }>;
    const job = buildJob(parseTemplate(templateMap!.data['job.yaml']!), { prefix: 'job-robot-', ttlSeconds: 1, serviceAccount: 'job-robot-job' }, { source: '/s', id: '1', type: 't', env: [] });
    const selector = source.spec.resources[0]!.selector.matchLabels;
    expect(Object.entries(selector).every(([k, v]) => job.metadata?.labels?.[k] === v), 'the launcher\'s Jobs match the selector').to.equal(true);
    expect(source.spec.ceOverrides.extensions).to.deep.equal(bridge.spec.ceOverrides.extensions);
    expect(source.spec.sink.ref).to.deep.equal({ apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: 'job-robot' });

    const sa = source.spec.serviceAccountName;
    expect(rendered.some((o) => o.kind === 'ServiceAccount' && o.metadata?.name === sa), `ServiceAccount ${sa}`).to.equal(true);
    type Binding = { roleRef: { kind: string; name: string }; subjects?: Array<{ kind: string; name: string }> };
    const bindings = (rendered.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') as unknown as Binding[]).filter((b) => b.subjects?.some((x) => x.name === sa));
    expect(bindings.map((b) => `${b.roleRef.kind}/${b.roleRef.name}`)).to.deep.equal([`Role/${sa}`]);
    const role = rendered.find((o) => o.kind === 'Role' && o.metadata?.name === sa) as unknown as { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
    expect(role.rules).to.deep.equal([{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch'] }]);
  });

  it('the results Trigger takes only the Job source\'s resource events of this instance, calls the results function with the audience it verifies, and retries like the launcher\'s', function () {
    type TriggerSpec = { filter?: unknown; filters: unknown[]; subscriber: { ref: Record<string, string>; audience: string }; delivery: unknown };
    const trigger = (name: string) => (rendered.find((o) => o.kind === 'Trigger' && o.metadata?.name === name) as unknown as { spec: TriggerSpec }).spec;
    const results = trigger('job-robot-results');
    const source = rendered.find((o) => o.kind === 'ApiServerSource') as unknown as { spec: { ceOverrides: { extensions: Record<string, string> } } };
    expect(results.filter).to.equal(undefined);
    expect(results.filters).to.deep.equal([{ prefix: { type: APISERVER_RESOURCE_PREFIX } }, { exact: { jobrobot: source.spec.ceOverrides.extensions['jobrobot'] } }]);
    for (const type of [APISERVER_ADD_TYPE, APISERVER_UPDATE_TYPE, APISERVER_DELETE_TYPE]) expect(type.startsWith(APISERVER_RESOURCE_PREFIX), type).to.equal(true);
    // The outcome events it answers with go back through the Broker: this Trigger must not take them.
    expect(JOB_SUCCEEDED_TYPE.startsWith(APISERVER_RESOURCE_PREFIX)).to.equal(false);
    expect(results.subscriber.ref).to.deep.equal({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'job-robot-results' });
    expect(results.delivery).to.deep.equal(trigger('job-robot-launcher').delivery);

    // The function as the Service runs it: it verifies the Trigger's audience and admits its identity.
    const svc = rendered.find((o) => o.kind === 'Service' && o.metadata?.name === 'job-robot-results')!;
    const [c] = containers(svc);
    const queue = rendered.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'job-robot-queue') as unknown as { data: Record<string, string> };
    const env = Object.fromEntries((c!.env ?? []).map((e) => [e.name, (e as { value?: string }).value ?? '']));
    const config = loadResultsConfig({ ...queue.data, ...env, REDIS_URL: 'redis://redis:6379/0', K_SERVICE: svc.metadata!.name! });
    expect(config.auth.audience).to.equal(results.subscriber.audience);
    const identity = oidcServiceAccount('job-robot-results', 'eventing.knative.dev', 'trigger');
    expect(config.auth.senders).to.deep.equal([identity]);
    expect(config.maxRequestBytes).to.equal(2 * 1024 * 1024);
    // Its dead letters reach the dead-letter sink through the same filter, as the same identity.
    expect(DEFAULT_SENDERS.deadLetter).to.include(identity);
  });
});
