import { expect } from 'chai';
import { BatchV1Api, type KubeConfig } from '@kubernetes/client-node';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION, EVENT_TYPE_ANNOTATION, IDENTITY_LABEL, MANAGED_BY_LABEL } from '../../function/kube/labels.ts';
import { identityHash, jobName } from '../../function/kube/names.ts';
import { asJobRobot, postBinary, postStructured, startLauncher, structured, type TestLauncher } from '../helpers/launcher.ts';
import { eventually, useNamespace } from '../helpers/kube.ts';
import { finishJobPods } from '../helpers/pods.ts';
import { plainJob } from '../helpers/jobs.ts';

describe('launcher: one CloudEvent in, exactly one Job out', function () {
  const ns = useNamespace('launch');
  let robot: KubeConfig;
  let l: TestLauncher;
  let batch: BatchV1Api;

  before(async function () {
    robot = await asJobRobot(ns.kc, ns.name);
    l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '1000' });
    batch = ns.kc.makeApiClient(BatchV1Api);
  });
  after(async function () {
    await l?.close();
  });

  const jobsWithIdentity = async (source: string, id: string) =>
    (await batch.listNamespacedJob({ namespace: ns.name, labelSelector: `${IDENTITY_LABEL}=${identityHash(source, id)}` })).items;

  it('a binary-mode event becomes one Job named by its identity, with owner labels and event annotations', async function () {
    const res = await postBinary(l.url, { id: 'first-1', source: '/queue/a', data: '{"n":1}' });
    expect(res.status).to.equal(202);
    const name = jobName('job-robot-', '/queue/a', 'first-1');
    expect(res.headers.get('location')).to.equal(`/jobs/${name}`);
    expect(res.headers.get('x-job-status')).to.equal('created');
    const job = await batch.readNamespacedJob({ name, namespace: ns.name });
    expect(job.metadata?.labels?.[MANAGED_BY_LABEL]).to.equal('job-robot');
    expect(job.metadata?.labels?.[IDENTITY_LABEL]).to.equal(identityHash('/queue/a', 'first-1'));
    expect(job.metadata?.annotations).to.include({
      [EVENT_ID_ANNOTATION]: 'first-1',
      [EVENT_SOURCE_ANNOTATION]: '/queue/a',
      [EVENT_TYPE_ANNOTATION]: 'dev.job-robot.queue.item',
    });
  });

  it('50 concurrent deliveries of one event create exactly one Job: one answer says created, 49 say exists', async function () {
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => postBinary(l.url, { id: 'storm-1', source: '/queue/storm', data: '{"same":true}' }, 'application/json')),
    );
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as Array<{ created: boolean; job: string }>;
    expect(answers.map((r) => r.status)).to.deep.equal(Array(50).fill(202));
    expect(bodies.filter((b) => b.created)).to.have.length(1);
    expect(new Set(bodies.map((b) => b.job)).size).to.equal(1);
    expect(await jobsWithIdentity('/queue/storm', 'storm-1')).to.have.length(1);
  });

  it('the same id from two sources is two events: two Jobs', async function () {
    expect((await postBinary(l.url, { id: 'shared-id', source: '/queue/x' })).status).to.equal(202);
    expect((await postBinary(l.url, { id: 'shared-id', source: '/queue/y' })).status).to.equal(202);
    expect(await jobsWithIdentity('/queue/x', 'shared-id')).to.have.length(1);
    expect(await jobsWithIdentity('/queue/y', 'shared-id')).to.have.length(1);
  });

  it('without Accept: application/json the 202 has an empty body (a Knative Broker retries any other reply)', async function () {
    const plain = await postBinary(l.url, { id: 'quiet-1' });
    expect(plain.status).to.equal(202);
    expect(await plain.text()).to.equal('');
    const wildcard = await postBinary(l.url, { id: 'quiet-1' }, '*/*');
    expect(await wildcard.text()).to.equal('');
    expect(wildcard.headers.get('x-job-status')).to.equal('exists');
    const json = await postBinary(l.url, { id: 'quiet-1' }, 'application/json');
    expect(await json.json()).to.deep.equal({
      job: jobName('job-robot-', '/test', 'quiet-1'),
      namespace: ns.name,
      created: false,
      location: `/jobs/${jobName('job-robot-', '/test', 'quiet-1')}`,
    });
  });

  it('structured mode: one Job; batch mode: one Job per event, a duplicate inside the batch created once', async function () {
    const one = await postStructured(l.url, structured('struct-1', { data: { a: 1 } }), 'application/json');
    expect(one.status).to.equal(202);
    expect(((await one.json()) as { created: boolean }).created).to.equal(true);

    const res = await postStructured(l.url, [structured('batch-1'), structured('batch-2'), structured('batch-1'), structured('struct-1')], 'application/json');
    expect(res.status).to.equal(202);
    const body = (await res.json()) as { jobs: Array<{ job: string; created: boolean }> };
    expect(body.jobs.map((j) => j.created)).to.deep.equal([true, true, true, false]);
    expect(body.jobs[0]!.job).to.equal(body.jobs[2]!.job);
    for (const id of ['batch-1', 'batch-2', 'struct-1']) expect(await jobsWithIdentity('/test', id)).to.have.length(1);
  });

  it('a batch with one invalid event is a 400 and creates none of its Jobs', async function () {
    const res = await postStructured(l.url, [structured('whole-1'), { ...structured('whole-2'), type: 'not.accepted' }]);
    expect(res.status).to.equal(400);
    expect(await jobsWithIdentity('/test', 'whole-1')).to.have.length(0);
  });

  it('an event type outside ACCEPTED_TYPES is a 400 naming the type, and creates nothing', async function () {
    const res = await postBinary(l.url, { id: 'wrong-type', type: 'com.example.other' });
    expect(res.status).to.equal(400);
    const body = (await res.json()) as { error: string; message: string };
    expect(body.error).to.equal('unaccepted-type');
    expect(body.message).to.contain('com.example.other');
    expect(await jobsWithIdentity('/test', 'wrong-type')).to.have.length(0);
  });

  it('Location answers running, then succeeded once the pod succeeds, then 404 once the Job is gone', async function () {
    const res = await postBinary(l.url, { id: 'lifecycle-ok' });
    const location = res.headers.get('location')!;
    const name = location.split('/').pop()!;
    const first = await fetch(`${l.url}${location}`);
    expect(first.status).to.equal(200);
    expect(await first.json()).to.deep.include({ job: name, namespace: ns.name, state: 'running' });

    await finishJobPods(ns.kc, ns.name, name, 'Succeeded');
    await eventually(async () => ((await (await fetch(`${l.url}${location}`)).json()) as { state: string }).state === 'succeeded', 30_000, 'state succeeded');

    await batch.deleteNamespacedJob({ name, namespace: ns.name, propagationPolicy: 'Background' });
    await eventually(async () => (await fetch(`${l.url}${location}`)).status === 404, 30_000, 'a 404 once deleted');
  });

  it('Location answers failed once the Job has failed past its backoff limit', async function () {
    const failing = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', JOB_NAME_PREFIX: 'fails-' }, {
      template: { ...plainJob('t', { backoffLimit: 0 }), metadata: {} },
    });
    try {
      const res = await postBinary(failing.url, { id: 'lifecycle-fail' });
      const location = res.headers.get('location')!;
      await finishJobPods(ns.kc, ns.name, location.split('/').pop()!, 'Failed');
      await eventually(async () => ((await (await fetch(`${failing.url}${location}`)).json()) as { state: string }).state === 'failed', 30_000, 'state failed');
    } finally {
      await failing.close();
    }
  });

  it('/metrics counts events, Jobs created, duplicates, rejections by reason and create latency', async function () {
    const metric = async (name: string) => {
      const text = await (await fetch(`${l.url}/metrics`)).text();
      return Number(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    };
    const before = {
      received: await metric('job_robot_launcher_events_received_total'),
      created: await metric('job_robot_launcher_jobs_created_total'),
      duplicates: await metric('job_robot_launcher_duplicates_total'),
      rejected: await metric('job_robot_launcher_rejections_total{reason="unaccepted-type"}'),
      creates: await metric('job_robot_launcher_create_duration_seconds_count{outcome="created"}'),
    };
    await postBinary(l.url, { id: 'metrics-1' });
    await postBinary(l.url, { id: 'metrics-1' });
    await postBinary(l.url, { id: 'metrics-2', type: 'not.accepted' });
    expect(await metric('job_robot_launcher_events_received_total')).to.equal(before.received + 3);
    expect(await metric('job_robot_launcher_jobs_created_total')).to.equal(before.created + 1);
    expect(await metric('job_robot_launcher_duplicates_total')).to.equal(before.duplicates + 1);
    expect(await metric('job_robot_launcher_rejections_total{reason="unaccepted-type"}')).to.equal(before.rejected + 1);
    expect(await metric('job_robot_launcher_create_duration_seconds_count{outcome="created"}')).to.equal(before.creates + 1);
    expect(await metric('job_robot_launcher_active_jobs')).to.be.at.least(1);
  });

  it('GET /jobs/:name is a 404 for a Job job-robot does not own, and for a name that cannot be a Job', async function () {
    await batch.createNamespacedJob({ namespace: ns.name, body: plainJob('someone-elses') });
    expect((await fetch(`${l.url}/jobs/someone-elses`)).status).to.equal(404);
    expect((await fetch(`${l.url}/jobs/${'x'.repeat(64)}`)).status).to.equal(404);
    expect((await fetch(`${l.url}/jobs/..%2F..%2Fsecrets`)).status).to.equal(404);
  });
});
