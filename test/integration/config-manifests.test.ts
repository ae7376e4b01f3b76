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

  it('renders every part: RBAC, template, launcher, reaper, PingSource, Broker, Trigger, bridge, dead-letter sink', function () {
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
    expect(services.map((o) => o.metadata?.name).sort()).to.deep.equal(['job-robot-dead-letter', 'job-robot-launcher', 'job-robot-reaper']);
    for (const svc of services) expect(svc.metadata?.labels?.['networking.knative.dev/visibility'], svc.metadata?.name).to.equal('cluster-local');
    expect(rendered.filter((o) => o.kind === 'DomainMapping')).to.deep.equal([]);
  });

  it('the EventPolicy lets only the bridge (a ref to its ContainerSource, no raw subject) send to the Broker', function () {
    const policy = rendered.find((o) => o.kind === 'EventPolicy') as unknown as {
      spec: { to: Array<{ ref?: Record<string, string> }>; from: Array<{ ref?: Record<string, string>; sub?: string }> };
    };
    const broker = rendered.find((o) => o.kind === 'Broker')!;
    const bridge = rendered.find((o) => o.kind === 'ContainerSource')!;
    expect(policy.spec.to).to.deep.equal([{ ref: { apiVersion: broker.apiVersion, kind: 'Broker', name: broker.metadata!.name } }]);
    expect(policy.spec.from).to.deep.equal([{ ref: { apiVersion: bridge.apiVersion, kind: 'ContainerSource', name: bridge.metadata!.name } }]);
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
    expect(parts).to.have.length(4);
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

  it('the functions scale to zero and run as job-robot; the dead-letter sink runs as an identity bound to no Role; the bridge holds no API token', function () {
    const svc = (name: string) => rendered.find((o) => o.kind === 'Service' && o.metadata?.name === name) as unknown as {
      spec: { template: { metadata: { annotations: Record<string, string> }; spec: Record<string, unknown> } };
    };
    for (const name of ['job-robot-launcher', 'job-robot-reaper']) {
      expect(svc(name).spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'], name).to.equal('0');
      expect(svc(name).spec.template.spec['serviceAccountName'], name).to.equal('job-robot');
    }
    // Its token reads only the ServiceAccount issuer's keys, to verify the Broker's OIDC tokens.
    expect(svc('job-robot-dead-letter').spec.template.spec['serviceAccountName']).to.equal('job-robot-dead-letter');
    const bound = rendered.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding').flatMap((b) => (b as unknown as { subjects?: { name: string }[] }).subjects ?? []);
    expect(bound.map((s) => s.name)).to.not.include('job-robot-dead-letter');
    const bridge = rendered.find((o) => o.kind === 'ContainerSource') as unknown as { spec: { template: { spec: Record<string, unknown> } } };
    expect(bridge.spec.template.spec['automountServiceAccountToken']).to.equal(false);
  });

  it('the bridge, the dead-letter sink and the reaper read one queue ConfigMap and one Redis Secret, so they cannot disagree', function () {
    const queue = rendered.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'job-robot-queue') as unknown as { data: Record<string, string> };
    expect(queue.data).to.deep.equal({ QUEUE_KEY: 'job-robot:queue', MODE: 'list' });
    const secret = rendered.find((o) => o.kind === 'Secret' && o.metadata?.name === 'job-robot-redis') as unknown as { data: Record<string, string> };
    expect(Object.keys(secret.data), 'redis.env: only the uncommented variable').to.deep.equal(['REDIS_URL']);
    const owners = ['ContainerSource/job-robot-bridge', 'Service/job-robot-dead-letter', 'Service/job-robot-reaper'];
    for (const owner of owners) {
      const obj = rendered.find((o) => `${o.kind}/${o.metadata?.name}` === owner)!;
      const [c] = containers(obj);
      expect(c!.envFrom, owner).to.deep.equal([{ configMapRef: { name: 'job-robot-queue' } }, { secretRef: { name: 'job-robot-redis' } }]);
      for (const name of ['QUEUE_KEY', 'MODE', 'REDIS_URL']) expect(c!.env?.map((e) => e.name) ?? [], `${owner} must not set ${name} again`).to.not.include(name);
    }
  });

  it('the Trigger takes only the events this bridge marks, so several job-robots can share a Broker', function () {
    const source = rendered.find((o) => o.kind === 'ContainerSource') as unknown as { spec: { ceOverrides?: { extensions?: Record<string, string> } } };
    const trigger = rendered.find((o) => o.kind === 'Trigger') as unknown as { spec: { filter: { attributes: Record<string, string> } } };
    const marks = source.spec.ceOverrides?.extensions ?? {};
    expect(Object.keys(marks)).to.deep.equal(['jobrobot']);
    expect(trigger.spec.filter.attributes).to.deep.equal({ type: 'dev.job-robot.queue.item', jobrobot: marks['jobrobot'] });
    // The bridge must accept the mark as Knative passes it (K_CE_OVERRIDES).
    const config = loadBridgeConfig({ K_SINK: 'http://broker', HOSTNAME: 'b', K_CE_OVERRIDES: JSON.stringify(source.spec.ceOverrides) });
    expect(config.event.extensions).to.deep.equal(marks);
  });
});
