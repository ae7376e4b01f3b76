import { expect } from 'chai';
import { AdmissionregistrationV1Api, BatchV1Api, CoreV1Api, type KubeConfig, type V1Container, type V1Job } from '@kubernetes/client-node';
import { kubeFailure } from '../../function/kube/api-error.ts';
import { IDENTITY_LABEL, MANAGED_BY_LABEL } from '../../function/kube/labels.ts';
import { parseTemplate } from '../../function/kube/job-template.ts';
import { buildJob, type JobSettings } from '../../function/launcher/job.ts';
import {
  adaptedPolicy,
  applyAdmissionPolicy,
  LIMITS_FILE,
  POLICY_FILE,
  shippedPolicy,
  tryCreate,
  waitPolicyReady,
  type AppliedPolicy,
} from '../helpers/admission-policy.ts';
import { applyManifests, createNamespace, deleteNamespace, eventually, parseManifests, useNamespace } from '../helpers/kube.ts';
import { asJobRobot, postBinary, startLauncher, type TestLauncher } from '../helpers/launcher.ts';
import { readRepoFile } from '../helpers/paths.ts';

/** The template job-robot ships, as the launcher reads it. */
function shippedTemplate(): V1Job {
  const [configMap] = parseManifests(readRepoFile('config/job-template.yaml')) as unknown as Array<{ data: Record<string, string> }>;
  return parseTemplate(configMap!.data['job.yaml']!, 'config/job-template.yaml');
}

const SETTINGS: JobSettings = { prefix: 'vap-', ttlSeconds: 600, serviceAccount: 'job-robot-job' };

/** The Job the launcher would make for event `id` from the shipped template: the policy admits it. */
const launcherJob = (id: string): V1Job => buildJob(shippedTemplate(), SETTINGS, { source: '/vap', id, type: 'dev.job-robot.queue.item', env: [] });

const pod = (job: V1Job) => job.spec!.template.spec!;
const first = (job: V1Job): V1Container => pod(job).containers[0]!;

/** A privileged first container (allowPrivilegeEscalation: false beside it is refused by validation). */
function privileged(job: V1Job): void {
  first(job).securityContext = { privileged: true, capabilities: { drop: ['ALL'] } };
}

interface Refused {
  name: string;
  shape: (job: V1Job) => void;
  message: RegExp;
}

/** Every Job shape the policy refuses to job-robot's identity, and the words of its refusal. */
const REFUSED: Refused[] = [
  { name: 'Job without the managed-by label', shape: (j) => delete j.metadata!.labels![MANAGED_BY_LABEL], message: /must carry the label app\.kubernetes\.io\/managed-by=job-robot/ },
  { name: 'Job with a forged managed-by value', shape: (j) => (j.metadata!.labels![MANAGED_BY_LABEL] = 'someone-else'), message: /must carry the label app\.kubernetes\.io\/managed-by=job-robot/ },
  { name: 'pod template without the managed-by label', shape: (j) => delete j.spec!.template.metadata!.labels![MANAGED_BY_LABEL], message: /must carry the label app\.kubernetes\.io\/managed-by=job-robot/ },
  { name: 'pods running as job-robot', shape: (j) => (pod(j).serviceAccountName = 'job-robot'), message: /must run as ServiceAccount job-robot-job, not job-robot$/ },
  { name: 'pods running as the namespace default (no serviceAccountName)', shape: (j) => delete pod(j).serviceAccountName, message: /must run as ServiceAccount job-robot-job, not the namespace default/ },
  {
    name: 'pods naming job-robot through the deprecated serviceAccount field',
    shape: (j) => {
      delete pod(j).serviceAccountName;
      pod(j).serviceAccount = 'job-robot';
    },
    message: /must run as ServiceAccount job-robot-job, not job-robot$/,
  },
  { name: 'automountServiceAccountToken: true', shape: (j) => (pod(j).automountServiceAccountToken = true), message: /must set automountServiceAccountToken: false, not true/ },
  { name: 'automountServiceAccountToken unset', shape: (j) => delete pod(j).automountServiceAccountToken, message: /must set automountServiceAccountToken: false, not leave it unset/ },
  { name: 'a privileged container', shape: privileged, message: /must not run privileged \(or Windows HostProcess\) containers: pi$/ },
  {
    name: 'a privileged init container',
    shape: (j) => (pod(j).initContainers = [{ name: 'setup', image: 'perl', securityContext: { privileged: true } }]),
    message: /must not run privileged \(or Windows HostProcess\) containers: setup$/,
  },
  { name: 'allowPrivilegeEscalation: true', shape: (j) => (first(j).securityContext!.allowPrivilegeEscalation = true), message: /must not set allowPrivilegeEscalation: true: pi$/ },
  { name: 'an added capability', shape: (j) => (first(j).securityContext!.capabilities = { drop: ['ALL'], add: ['NET_ADMIN'] }), message: /must not add capabilities: pi$/ },
  { name: 'hostNetwork', shape: (j) => (pod(j).hostNetwork = true), message: /must not use the host's namespaces: hostNetwork$/ },
  { name: 'hostPID', shape: (j) => (pod(j).hostPID = true), message: /must not use the host's namespaces: hostPID$/ },
  { name: 'hostIPC', shape: (j) => (pod(j).hostIPC = true), message: /must not use the host's namespaces: hostIPC$/ },
  {
    name: 'a hostPath volume',
    shape: (j) => {
      pod(j).volumes = [{ name: 'root', hostPath: { path: '/' } }];
      first(j).volumeMounts = [{ name: 'root', mountPath: '/host', readOnly: true }];
    },
    message: /must not mount hostPath volumes: root$/,
  },
  { name: 'an image not on the list', shape: (j) => (first(j).image = 'busybox'), message: /image not allowed for job-robot's Jobs: busybox \(allowed: the images listed in ConfigMap [^/]+\/job-robot-job-limits\)/ },
  { name: 'an image that only starts like an allowed one', shape: (j) => (first(j).image = 'perl-evil'), message: /image not allowed for job-robot's Jobs: perl-evil / },
  { name: 'an allowed name with another tag', shape: (j) => (first(j).image = 'perl:latest'), message: /image not allowed for job-robot's Jobs: perl:latest / },
  {
    name: 'an init container with an image not on the list',
    shape: (j) => (pod(j).initContainers = [{ name: 'fetch', image: 'alpine', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }]),
    message: /image not allowed for job-robot's Jobs: alpine /,
  },
];

/** What the API server answered for each refused shape (printed with JOB_ROBOT_PRINT_REFUSALS=1). */
const answers: Array<{ name: string; code: number; message: string }> = [];

describe('admission policy: the API server refuses Jobs from job-robot that the template does not allow', function () {
  const ns = useNamespace('vap');
  let robot: KubeConfig;
  let applied: AppliedPolicy;
  let batch: BatchV1Api;

  before(async function () {
    await applyManifests(ns.kc, readRepoFile(LIMITS_FILE), ns.name);
    robot = await asJobRobot(ns.kc, ns.name);
    batch = ns.kc.makeApiClient(BatchV1Api);
    applied = await applyAdmissionPolicy(ns.kc, ns.name);
    await waitPolicyReady(ns.kc, ns.name, applied.name);
  });
  after(async function () {
    await applied?.remove();
    if (process.env['JOB_ROBOT_PRINT_REFUSALS']) for (const a of answers) process.stdout.write(`${a.name}\n  ${a.code} ${a.message}\n`);
  });

  it('the shipped binding names namespace job-robot in exactly the two places the README says to change; the policy covers batch/v1 Jobs', function () {
    const { binding } = shippedPolicy();
    expect(binding.spec!.paramRef).to.deep.equal({ name: 'job-robot-job-limits', namespace: 'job-robot', parameterNotFoundAction: 'Deny' });
    expect(binding.spec!.matchResources).to.deep.equal({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'job-robot' } } });
    expect(binding.spec!.validationActions).to.deep.equal(['Deny']);
    // A wildcard version would turn the status controller's type checking off.
    expect(shippedPolicy().policy.spec!.matchConstraints!.resourceRules).to.deep.equal([
      { apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['jobs'] },
    ]);
    const adapted = adaptedPolicy('elsewhere', 'x');
    expect(JSON.stringify(adapted.policy.spec)).to.not.contain('job-robot-job-limits');
    expect(JSON.stringify(adapted.binding.spec)).to.not.match(/"job-robot"/);
  });

  it('type-checks against batch/v1 Jobs without warnings (the policy status controller)', async function () {
    const api = ns.kc.makeApiClient(AdmissionregistrationV1Api);
    const status = await eventually(async () => {
      const p = await api.readValidatingAdmissionPolicy({ name: applied.name });
      return p.status?.observedGeneration === p.metadata?.generation ? p.status : undefined;
    });
    expect(status.typeChecking, 'checked').to.not.equal(undefined);
    expect(status.typeChecking!.expressionWarnings ?? []).to.deep.equal([]);
  });

  REFUSED.forEach((c, i) => {
    it(`refuses ${c.name}, with the policy's message`, async function () {
      const job = launcherJob(`refused-${i}`);
      c.shape(job);
      const f = await tryCreate(robot, ns.name, job);
      expect(f, 'admitted').to.not.equal(undefined);
      answers.push({ name: c.name, code: f!.code, message: f!.message });
      expect(f!.code, f!.message).to.equal(422);
      expect(f!.message).to.contain(`ValidatingAdmissionPolicy '${applied.name}' with binding '${applied.name}' denied request`);
      expect(f!.message).to.match(c.message);
    });
  });

  it('an ephemeral container in a Job is refused before the policy sees it (the API server forbids them in templates)', async function () {
    const job = launcherJob('ephemeral');
    pod(job).ephemeralContainers = [{ name: 'debug', image: 'busybox', securityContext: { privileged: true } }];
    const f = await tryCreate(robot, ns.name, job);
    expect(f, 'admitted').to.not.equal(undefined);
    answers.push({ name: 'an ephemeral container', code: f!.code, message: f!.message });
    expect(f!.code).to.equal(422);
  });

  it('no refused shape left a Job behind', async function () {
    const jobs = (await batch.listNamespacedJob({ namespace: ns.name })).items.map((j) => j.metadata!.name);
    expect(jobs).to.deep.equal([]);
  });

  it('the Job the launcher would make from the shipped template is admitted', async function () {
    const job = launcherJob('direct-ok');
    expect(await tryCreate(robot, ns.name, job)).to.equal(undefined);
    await batch.deleteNamespacedJob({ name: job.metadata!.name!, namespace: ns.name, propagationPolicy: 'Background' });
  });

  it('other identities are not affected: an admin creates a privileged Job', async function () {
    const job = launcherJob('admin-privileged');
    privileged(job);
    pod(job).hostNetwork = true;
    expect(await tryCreate(ns.kc, ns.name, job)).to.equal(undefined);
    await batch.deleteNamespacedJob({ name: job.metadata!.name!, namespace: ns.name, propagationPolicy: 'Background' });
  });

  it('the binding decides the namespaces: job-robot in a namespace it does not select is not checked', async function () {
    const other = await createNamespace(ns.kc, 'vap-unbound');
    try {
      const robotThere = await asJobRobot(ns.kc, other);
      const job = launcherJob('unbound');
      pod(job).hostPID = true;
      expect(await tryCreate(robotThere, other, job, true)).to.equal(undefined);
    } finally {
      await deleteNamespace(ns.kc, other);
    }
  });

  it('UPDATE is covered too: job-robot, granted update, may not strip the managed-by label from a Job', async function () {
    await applyManifests(
      ns.kc,
      [
        'apiVersion: rbac.authorization.k8s.io/v1',
        'kind: Role',
        'metadata: {name: vap-update}',
        'rules: [{apiGroups: [batch], resources: [jobs], verbs: [update, patch]}]',
        '---',
        'apiVersion: rbac.authorization.k8s.io/v1',
        'kind: RoleBinding',
        'metadata: {name: vap-update}',
        'roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: vap-update}',
        'subjects: [{kind: ServiceAccount, name: job-robot}]',
      ].join('\n'),
      ns.name,
    );
    const name = launcherJob('update').metadata!.name!;
    expect(await tryCreate(robot, ns.name, launcherJob('update'))).to.equal(undefined);
    const robotBatch = robot.makeApiClient(BatchV1Api);
    /** job-robot replaces the Job with `change` applied: 'admitted', or the refusal. */
    const update = (change: (job: V1Job) => void) =>
      eventually(async () => {
        const job = await batch.readNamespacedJob({ name, namespace: ns.name });
        change(job);
        try {
          await robotBatch.replaceNamespacedJob({ name, namespace: ns.name, body: job });
          return 'admitted' as const;
        } catch (err) {
          const f = kubeFailure(err);
          // 403 until the RoleBinding reaches the authorizer; 409 when the job controller wrote in between.
          return f.code === 422 ? f : undefined;
        }
      });
    const stripped = await update((job) => delete job.metadata!.labels![MANAGED_BY_LABEL]);
    expect(stripped).to.not.equal('admitted');
    if (stripped === 'admitted') return;
    answers.push({ name: 'an update stripping the managed-by label', code: stripped.code, message: stripped.message });
    expect(stripped.message).to.match(/must carry the label app\.kubernetes\.io\/managed-by=job-robot/);
    expect(await update((job) => (job.metadata!.labels!['team'] = 'a'))).to.equal('admitted');
    await batch.deleteNamespacedJob({ name, namespace: ns.name, propagationPolicy: 'Background' });
  });

  describe('the launcher, with the shipped template, under the policy', function () {
    let l: TestLauncher;

    before(async function () {
      l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', JOB_NAME_PREFIX: 'shipped-', OIDC_AUTHENTICATION: 'disabled' }, { template: shippedTemplate() });
    });
    after(async function () {
      await l?.close();
    });

    it('passes its start-up dry run (ready) and every event becomes a Job', async function () {
      const ids = ['a-1', 'b-2', 'with $(DOLLAR) and ünïcode', 'x'.repeat(300)];
      const answered = await Promise.all(ids.map((id) => postBinary(l.url, { id, source: '/vap/shipped', data: JSON.stringify({ id }) })));
      expect(answered.map((r) => r.status)).to.deep.equal(ids.map(() => 202));
      const jobs = (await batch.listNamespacedJob({ namespace: ns.name, labelSelector: `${MANAGED_BY_LABEL}=job-robot,${IDENTITY_LABEL}` })).items.filter((j) =>
        j.metadata!.name!.startsWith('shipped-'),
      );
      expect(jobs).to.have.length(ids.length);
      for (const j of jobs) {
        expect(j.spec!.template.metadata!.labels![MANAGED_BY_LABEL]).to.equal('job-robot');
        expect(j.spec!.template.spec!.serviceAccountName).to.equal('job-robot-job');
      }
    });

    it('a template the policy refuses keeps the launcher unready with the policy\'s message; its events answer 500', async function () {
      const template = shippedTemplate();
      pod(template).containers[0]!.image = 'busybox';
      const bad = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', JOB_NAME_PREFIX: 'refused-', OIDC_AUTHENTICATION: 'disabled' }, { template, waitReady: false });
      try {
        const res = await fetch(`${bad.url}/health/readiness`);
        expect(res.status).to.equal(503);
        const failing = ((await res.json()) as { failing: Record<string, string> }).failing['template']!;
        expect(failing).to.contain('the API server rejects the Job template').and.contain('image not allowed for job-robot\'s Jobs: busybox');
        const post = await postBinary(bad.url, { id: 'refused-1' });
        expect(post.status).to.equal(500);
        expect(((await post.json()) as { error: string }).error).to.equal('template-rejected');
      } finally {
        await bad.close();
      }
    });
  });

  describe('the parameter ConfigMap', function () {
    const limits = () => parseManifests(readRepoFile(LIMITS_FILE))[0] as unknown as { metadata: { name: string }; data: Record<string, string> };
    const core = () => ns.kc.makeApiClient(CoreV1Api);

    it('a line ending in "/" allows every image under that path, and only there', async function () {
      const cm = limits();
      cm.data['images'] = `${cm.data['images']}# a comment line\n\nregistry.example.com/batch/\n`;
      await core().replaceNamespacedConfigMap({ name: cm.metadata.name, namespace: ns.name, body: { ...cm, metadata: { name: cm.metadata.name } } });
      const under = launcherJob('prefix-ok');
      first(under).image = 'registry.example.com/batch/tool:1.2';
      await eventually(async () => (await tryCreate(robot, ns.name, under, true)) === undefined, 30_000, 'the new image list to be used');
      const beside = launcherJob('prefix-beside');
      first(beside).image = 'registry.example.com/batchx/tool:1.2';
      expect((await tryCreate(robot, ns.name, beside, true))?.message).to.match(/image not allowed for job-robot's Jobs: registry\.example\.com\/batchx\/tool:1\.2 /);
      const comment = launcherJob('comment');
      first(comment).image = '# a comment line';
      expect((await tryCreate(robot, ns.name, comment, true))?.message).to.match(/image not allowed for job-robot's Jobs: # a comment line /);
    });

    it('a ConfigMap without the serviceAccount key refuses every Job, saying which keys it needs', async function () {
      const cm = limits();
      delete cm.data['serviceAccount'];
      await core().replaceNamespacedConfigMap({ name: cm.metadata.name, namespace: ns.name, body: { ...cm, metadata: { name: cm.metadata.name } } });
      const f = await eventually(async () => {
        const r = await tryCreate(robot, ns.name, launcherJob('no-key'), true);
        return r?.message.includes('must hold the keys') ? r : undefined;
      });
      answers.push({ name: 'limits ConfigMap without serviceAccount', code: f.code, message: f.message });
      expect(f.message).to.contain(`the parameter ConfigMap ${ns.name}/job-robot-job-limits must hold the keys serviceAccount and images`);
    });

    it("without the ConfigMap every Job in the namespace is refused, an admin's too (parameterNotFoundAction: Deny is checked before the identity)", async function () {
      await core().deleteNamespacedConfigMap({ name: 'job-robot-job-limits', namespace: ns.name });
      const f = await eventually(async () => {
        const r = await tryCreate(robot, ns.name, launcherJob('no-params'), true);
        return r && !r.message.includes('must hold the keys') ? r : undefined;
      });
      answers.push({ name: 'no limits ConfigMap', code: f.code, message: f.message });
      const noParams = 'no params found for policy binding with `Deny` parameterNotFoundAction';
      expect(f.message).to.contain(applied.name).and.contain(noParams);
      const admin = await tryCreate(ns.kc, ns.name, launcherJob('no-params-admin'), true);
      answers.push({ name: "no limits ConfigMap, an admin's Job", code: admin!.code, message: admin!.message });
      expect(admin?.message).to.contain(noParams);
      await applyManifests(ns.kc, readRepoFile(LIMITS_FILE), ns.name);
      await waitPolicyReady(ns.kc, ns.name, applied.name);
      expect(await tryCreate(ns.kc, ns.name, launcherJob('params-back-admin'), true)).to.equal(undefined);
    });
  });

  it(`${POLICY_FILE} is not in the kustomization (cluster-scoped: an admin applies it once)`, function () {
    const kustomization = parseManifests(readRepoFile('config/kustomization.yaml'))[0] as unknown as { resources: string[] };
    expect(kustomization.resources).to.not.satisfy((rs: string[]) => rs.some((r) => r.includes('cluster')));
    expect(kustomization.resources).to.include('job-limits.yaml');
  });
});
