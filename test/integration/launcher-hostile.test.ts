import { expect } from 'chai';
import { BatchV1Api, type KubeConfig, type V1Job, type V1PodSpec } from '@kubernetes/client-node';
import { jobName } from '../../function/kube/names.ts';
import { EVENT_ENV_NAMES } from '../../function/launcher/event-env.ts';
import { asJobRobot, postBinary, postStructured, startLauncher, structured, type TestLauncher } from '../helpers/launcher.ts';
import { useNamespace } from '../helpers/kube.ts';

/** The pod spec with the event's own parts (env values, args) taken out: what the event must not change. */
function podWithoutEvent(job: V1Job): V1PodSpec {
  const pod = structuredClone(job.spec!.template.spec!);
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    // The template's own variables stay; the event's are values of the fixed CE_* names.
    expect((c.env ?? []).filter((e) => !EVENT_ENV_NAMES.has(e.name)).map((e) => e.name)).to.deep.equal([]);
    delete c.env;
    delete c.args;
  }
  return pod;
}

const HOSTILE = {
  image: 'evil.example.com/miner:latest',
  serviceAccountName: 'job-robot',
  serviceAccount: 'job-robot',
  automountServiceAccountToken: true,
  privileged: true,
  securityContext: { privileged: true, runAsUser: 0, runAsNonRoot: false, capabilities: { add: ['SYS_ADMIN'] } },
  volumes: [{ name: 'host', hostPath: { path: '/' } }],
  volumeMounts: [{ name: 'host', mountPath: '/host' }],
  hostNetwork: true,
  hostPID: true,
  hostIPC: true,
  resources: { limits: { cpu: '64', memory: '512Gi' } },
  containers: [{ name: 'sidecar', image: 'evil', securityContext: { privileged: true } }],
  initContainers: [{ name: 'init', image: 'evil' }],
  spec: { template: { spec: { hostNetwork: true, containers: [{ name: 'x', image: 'evil' }] } } },
  metadata: { name: 'chosen-name', labels: { 'app.kubernetes.io/managed-by': 'someone-else' }, namespace: 'kube-system' },
  env: [{ name: 'CE_DATA', value: 'forged' }, { name: 'LD_PRELOAD', value: '/host/evil.so' }],
  constructor: { prototype: { image: 'evil' } },
  args: ['--privileged', '$(API_TOKEN)'],
};

describe('launcher: event data can never choose image, service account, privileges, volumes, host namespaces or resources', function () {
  const ns = useNamespace('hostile');
  let robot: KubeConfig;
  let l: TestLauncher;
  let batch: BatchV1Api;
  let benign: V1Job;

  before(async function () {
    robot = await asJobRobot(ns.kc, ns.name);
    l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', ARGS_FIELD: 'args' });
    batch = ns.kc.makeApiClient(BatchV1Api);
    expect((await postBinary(l.url, { id: 'benign', data: '{"hello":"world"}' })).status).to.equal(202);
    benign = await batch.readNamespacedJob({ name: jobName('job-robot-', '/test', 'benign'), namespace: ns.name });
  });
  after(async function () {
    await l?.close();
  });

  it('the Job of a benign event runs the template hardened: own ServiceAccount, no token, non-root, no privilege escalation', function () {
    const pod = benign.spec!.template.spec!;
    expect(pod.serviceAccountName).to.equal('job-robot-job');
    expect(pod.automountServiceAccountToken).to.equal(false);
    expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.containers.map((c) => c.image)).to.deep.equal(['perl']);
    expect(pod.containers[0]!.securityContext).to.deep.equal({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(pod.hostNetwork ?? false).to.equal(false);
    expect(pod.volumes ?? []).to.deep.equal([]);
    expect(benign.spec!.ttlSecondsAfterFinished).to.equal(7 * 86400);
    expect(benign.spec!.podReplacementPolicy).to.equal('Failed');
  });

  it('binary mode: hostile data changes nothing but the env values and the declared args', async function () {
    // A literal "__proto__" key (an object literal would set the prototype instead).
    const data = `${JSON.stringify(HOSTILE).slice(0, -1)},"__proto__":{"image":"evil","privileged":true}}`;
    const res = await postBinary(l.url, {
      id: 'hostile-binary',
      data,
      headers: { 'ce-image': 'evil', 'ce-serviceaccountname': 'job-robot', 'ce-hostnetwork': 'true', 'ce-subject': 'spec.template.spec.hostNetwork=true' },
    });
    expect(res.status).to.equal(202);
    const job = await batch.readNamespacedJob({ name: jobName('job-robot-', '/test', 'hostile-binary'), namespace: ns.name });
    expect(podWithoutEvent(job)).to.deep.equal(podWithoutEvent(benign));
    expect(job.spec!.template.spec!.containers[0]!.args).to.deep.equal(['--privileged', '$$(API_TOKEN)']);
    expect(job.metadata!.name).to.equal(jobName('job-robot-', '/test', 'hostile-binary'));
    expect(job.metadata!.namespace).to.equal(ns.name);
    expect(job.metadata!.labels!['app.kubernetes.io/managed-by']).to.equal('job-robot');
    const { ttlSecondsAfterFinished, podReplacementPolicy, backoffLimit, activeDeadlineSeconds } = job.spec!;
    expect({ ttlSecondsAfterFinished, podReplacementPolicy, backoffLimit, activeDeadlineSeconds }).to.deep.equal({
      ttlSecondsAfterFinished: benign.spec!.ttlSecondsAfterFinished,
      podReplacementPolicy: benign.spec!.podReplacementPolicy,
      backoffLimit: benign.spec!.backoffLimit,
      activeDeadlineSeconds: benign.spec!.activeDeadlineSeconds,
    });
  });

  it('structured mode: hostile data and hostile string extensions change nothing but the env values', async function () {
    const res = await postStructured(l.url, structured('hostile-structured', { data: { ...HOSTILE, args: undefined }, image: 'evil', hostpid: true, runasuser: 0 }));
    expect(res.status).to.equal(202);
    const job = await batch.readNamespacedJob({ name: jobName('job-robot-', '/test', 'hostile-structured'), namespace: ns.name });
    expect(podWithoutEvent(job)).to.deep.equal(podWithoutEvent(benign));
    expect(job.spec!.template.spec!.containers[0]!.args).to.equal(undefined);
  });

  it('structured mode: an object-valued attribute trying to smuggle a pod spec is a 400 and creates nothing', async function () {
    const res = await postStructured(l.url, structured('hostile-object', { spec: HOSTILE.spec }));
    expect(res.status).to.equal(400);
    const name = jobName('job-robot-', '/test', 'hostile-object');
    expect((await batch.listNamespacedJob({ namespace: ns.name, fieldSelector: `metadata.name=${name}` })).items).to.have.length(0);
  });

  it('a forged CE_DATA or LD_PRELOAD entry in the data stays inside CE_DATA', async function () {
    const job = await batch.readNamespacedJob({ name: jobName('job-robot-', '/test', 'hostile-binary'), namespace: ns.name });
    const names = job.spec!.template.spec!.containers[0]!.env!.map((e) => e.name);
    expect(names.filter((n) => n === 'CE_DATA')).to.have.length(1);
    expect(names).to.not.include('LD_PRELOAD');
  });
});
