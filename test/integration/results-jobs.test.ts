/**
 * The results function on real Jobs: the launcher makes them from queue events on the real control
 * plane, the real job controller finishes them (pods reported Succeeded or Failed through the API,
 * or an activeDeadlineSeconds that passes), and their Job objects, read raw from the API server,
 * are POSTed as the ApiServerSource adapter sends them. Records and the results stream are read
 * from the real Redis.
 */
import { expect } from 'chai';
import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { DEFAULT_TEMPLATE } from '../../function/kube/job-template.ts';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION, INSTANCE_LABEL, MANAGED_BY_LABEL } from '../../function/kube/labels.ts';
import { jobName } from '../../function/kube/names.ts';
import { appendDeadLetters } from '../../function/queue/dead-letter.ts';
import { eventsFromRequest } from '../../function/http/cloudevent.ts';
import { plainJob, waitForJobCondition } from '../helpers/jobs.ts';
import { useNamespace } from '../helpers/kube.ts';
import { asJobRobot, postBinary, startLauncher, type TestLauncher } from '../helpers/launcher.ts';
import { finishJobPods } from '../helpers/pods.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { metricValue, postApiServerEvent, rawJob, startResults, type RawObject, type ResultsUnderTest } from '../helpers/results.ts';

const SOURCE = '/queue/results';

/** The default template, failing for good on the first failed pod. */
function template(extra: Partial<V1Job['spec']> = {}): V1Job {
  const t = structuredClone(DEFAULT_TEMPLATE);
  t.spec = { ...t.spec!, backoffLimit: 0, ...extra };
  return t;
}

/** The outcome event in a 200: its attributes from the ce- headers, and its data. */
async function outcome(res: Response): Promise<{ attributes: Record<string, unknown>; data: Record<string, unknown> }> {
  const headers = Object.fromEntries(res.headers.entries());
  const body = Buffer.from(await res.arrayBuffer());
  const [event] = eventsFromRequest(headers, body);
  const { data, ...attributes } = event!.toJSON() as Record<string, unknown>;
  return { attributes, data: data as Record<string, unknown> };
}

describe('results: what became of items whose Jobs the launcher made, recorded in Redis', function () {
  this.timeout(120_000);
  const ns = useNamespace('results');
  let redis: RedisServer;
  let robot: KubeConfig;
  let launcher: TestLauncher;
  let r: ResultsUnderTest;
  let batch: BatchV1Api;

  before(async function () {
    redis = await startRedis();
    robot = await asJobRobot(ns.kc, ns.name);
    launcher = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0' }, { template: template() });
    r = await startResults(redis.url);
    batch = ns.kc.makeApiClient(BatchV1Api);
  });
  after(async function () {
    await r?.close();
    await launcher?.close();
    await redis?.stop();
  });

  /** Sends item `id` through the launcher; resolves with its Job's name once the Job exists. */
  async function launch(id: string, via: TestLauncher = launcher, prefix = 'job-robot-'): Promise<string> {
    const res = await postBinary(via.url, { id, source: SOURCE, data: '{"n":1}' });
    expect(res.status, await res.text()).to.equal(202);
    return jobName(prefix, SOURCE, id);
  }

  const raw = (name: string) => rawJob(ns.kc, ns.name, name);

  /** Reports the Job's pod finished with `phase` and waits for the job controller's verdict; returns the Job as served. */
  async function finish(name: string, phase: 'Succeeded' | 'Failed'): Promise<RawObject> {
    await finishJobPods(ns.kc, ns.name, name, phase);
    await waitForJobCondition(ns.kc, ns.name, name);
    return raw(name);
  }

  const stripped = (entries: Array<Record<string, string>>, id: string) => entries.filter((e) => e['id'] === id).map((e) => e['state']);

  it('a Job that succeeds: its add records created; the update that says Complete records succeeded once and answers dev.job-robot.job.succeeded', async function () {
    const name = await launch('ok-1');
    const running = await raw(name);
    const added = await postApiServerEvent(r.url, 'add', running);
    expect(added.status).to.equal(202);
    expect(await added.text()).to.equal('');
    expect(await r.record('ok-1')).to.deep.include({ id: 'ok-1', state: 'created', source: SOURCE, job: name });

    const done = await finish(name, 'Succeeded');
    const res = await postApiServerEvent(r.url, 'update', done);
    expect(res.status).to.equal(200);
    const { attributes, data } = await outcome(res);
    const uid = (done.metadata as { uid: string }).uid;
    const complete = (done.status as { conditions: Array<{ type: string; reason: string; lastTransitionTime: string }> }).conditions.find((c) => c.type === 'Complete')!;
    const finished = new Date(complete.lastTransitionTime).toISOString();
    expect(attributes).to.deep.include({
      specversion: '1.0',
      type: 'dev.job-robot.job.succeeded',
      id: `${uid}.succeeded`,
      source: `/job-robot/${ns.name}/results`,
      subject: name,
      jobrobotid: 'ok-1',
      jobrobotsource: SOURCE,
      jobrobot: 'job-robot',
    });
    expect(data).to.deep.include({ id: 'ok-1', source: SOURCE, job: name, state: 'succeeded', reason: complete.reason, finished });
    const record = await r.record('ok-1');
    expect(record).to.deep.include({ state: 'succeeded', job: name, reason: complete.reason, finished });
    expect(record!.created).to.equal(new Date((running.metadata as { creationTimestamp: string }).creationTimestamp).toISOString());
    expect(stripped(await r.stream(), 'ok-1')).to.deep.equal(['succeeded']);
    expect(await metricValue(r.registry, 'job_robot_results_replies_total', { type: 'dev.job-robot.job.succeeded' })).to.be.at.least(1);
  });

  it('a pod that fails with backoffLimit 0: failed with BackoffLimitExceeded, answered dev.job-robot.job.failed', async function () {
    const name = await launch('fail-1');
    const done = await finish(name, 'Failed');
    const res = await postApiServerEvent(r.url, 'update', done);
    expect(res.status).to.equal(200);
    const { attributes, data } = await outcome(res);
    expect(attributes).to.deep.include({ type: 'dev.job-robot.job.failed', id: `${(done.metadata as { uid: string }).uid}.failed`, jobrobotid: 'fail-1' });
    expect(data).to.deep.include({ id: 'fail-1', state: 'failed', reason: 'BackoffLimitExceeded' });
    expect(await r.record('fail-1')).to.deep.include({ state: 'failed', reason: 'BackoffLimitExceeded' });
    expect(stripped(await r.stream(), 'fail-1')).to.deep.equal(['failed']);
  });

  it('a Job past its activeDeadlineSeconds: failed with DeadlineExceeded and the job controller\'s message', async function () {
    const hasty = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', JOB_NAME_PREFIX: 'hasty-' }, { template: template({ activeDeadlineSeconds: 1 }) });
    try {
      const name = await launch('deadline-1', hasty, 'hasty-');
      expect(await waitForJobCondition(ns.kc, ns.name, name)).to.equal('Failed');
      const res = await postApiServerEvent(r.url, 'update', await raw(name));
      expect(res.status).to.equal(200);
      const record = await r.record('deadline-1');
      expect(record).to.deep.include({ state: 'failed', reason: 'DeadlineExceeded' });
      expect(record!.message).to.match(/deadline/i);
      expect((await outcome(res)).data).to.deep.include({ state: 'failed', reason: 'DeadlineExceeded', message: record!.message });
    } finally {
      await hasty.close();
    }
  });

  it('redelivery: the same finished update again, in binary and structured mode, answers the same outcome event and writes nothing new', async function () {
    const name = await launch('again-1');
    const done = await finish(name, 'Succeeded');
    const first = await postApiServerEvent(r.url, 'update', done, { id: 'adapter-event-1' });
    const ids = [(await outcome(first)).attributes['id']];
    const recordedBefore = await metricValue(r.registry, 'job_robot_results_recorded_total', { state: 'succeeded' });
    for (const mode of ['binary', 'structured', 'binary'] as const) {
      const again = await postApiServerEvent(r.url, 'update', done, { id: 'adapter-event-1', mode });
      expect(again.status, mode).to.equal(200);
      ids.push((await outcome(again)).attributes['id']);
    }
    expect(new Set(ids).size).to.equal(1);
    expect(stripped(await r.stream(), 'again-1')).to.deep.equal(['succeeded']);
    expect(await metricValue(r.registry, 'job_robot_results_recorded_total', { state: 'succeeded' })).to.equal(recordedBefore);
  });

  it('out of order: the finished update before the add, then the late running add and a finished add: one final state, one stream entry', async function () {
    const name = await launch('order-1');
    const running = await raw(name);
    const done = await finish(name, 'Failed');
    expect((await postApiServerEvent(r.url, 'update', done)).status).to.equal(200);
    const late = await postApiServerEvent(r.url, 'add', running);
    expect(late.status).to.equal(202);
    expect(await late.text()).to.equal('');
    expect((await r.record('order-1'))!.state).to.equal('failed');
    // An add of the finished Job (a watch that started after it finished) finds the record final in that state.
    const finishedAdd = await postApiServerEvent(r.url, 'add', done);
    expect(finishedAdd.status).to.equal(200);
    expect((await outcome(finishedAdd)).attributes['id']).to.equal(`${(done.metadata as { uid: string }).uid}.failed`);
    expect(stripped(await r.stream(), 'order-1')).to.deep.equal(['failed']);
  });

  it('ten deliveries of the finished update at once: one stream entry, and every answer is the outcome event', async function () {
    const name = await launch('storm-1');
    const done = await finish(name, 'Succeeded');
    const answers = await Promise.all(Array.from({ length: 10 }, () => postApiServerEvent(r.url, 'update', done)));
    expect(answers.map((a) => a.status)).to.deep.equal(Array(10).fill(200));
    expect(stripped(await r.stream(), 'storm-1')).to.deep.equal(['succeeded']);
  });

  it('deleted before it finished: failed with reason Deleted, one stream entry, and no outcome event', async function () {
    const name = await launch('gone-1');
    const running = await raw(name);
    await postApiServerEvent(r.url, 'add', running);
    await batch.deleteNamespacedJob({ name, namespace: ns.name, propagationPolicy: 'Background' });
    const res = await postApiServerEvent(r.url, 'delete', running);
    expect(res.status).to.equal(202);
    expect(await res.text()).to.equal('');
    const record = await r.record('gone-1');
    expect(record).to.deep.include({ state: 'failed', reason: 'Deleted', message: `the Job ${name} was deleted before it finished`, job: name });
    expect(stripped(await r.stream(), 'gone-1')).to.deep.equal(['failed']);
  });

  it('deleted after it finished (the reaper\'s work): the final state stays, no second stream entry, no outcome event', async function () {
    const name = await launch('reaped-1');
    const done = await finish(name, 'Succeeded');
    expect((await postApiServerEvent(r.url, 'update', done)).status).to.equal(200);
    await batch.deleteNamespacedJob({ name, namespace: ns.name, propagationPolicy: 'Background' });
    const res = await postApiServerEvent(r.url, 'delete', done);
    expect(res.status).to.equal(202);
    expect((await r.record('reaped-1'))!.state).to.equal('succeeded');
    expect(stripped(await r.stream(), 'reaped-1')).to.deep.equal(['succeeded']);
  });

  it('a finished Job whose only event is its delete (the update was missed): its final state is recorded, without a reply', async function () {
    const name = await launch('missed-1');
    const done = await finish(name, 'Failed');
    await batch.deleteNamespacedJob({ name, namespace: ns.name, propagationPolicy: 'Background' });
    expect((await postApiServerEvent(r.url, 'delete', done)).status).to.equal(202);
    expect(await r.record('missed-1')).to.deep.include({ state: 'failed', reason: 'BackoffLimitExceeded' });
  });

  it('an item the Broker dead-lettered keeps that state when its Job finishes after all: 202, no outcome event', async function () {
    const refused = await appendDeadLetters(r.client, r.config.keys, r.config.results, [
      { id: 'late-1', item: Buffer.from('{"n":1}'), reason: 'the Broker gave up delivering to the launcher: HTTP 503', status: 503, attempts: 0, time: new Date(), source: SOURCE },
    ]);
    expect(refused).to.equal(undefined);
    const name = await launch('late-1');
    const res = await postApiServerEvent(r.url, 'update', await finish(name, 'Succeeded'));
    expect(res.status).to.equal(202);
    expect(await res.text()).to.equal('');
    expect((await r.record('late-1'))!.state).to.equal('dead-lettered');
    expect(stripped(await r.stream(), 'late-1')).to.deep.equal(['dead-lettered']);
  });

  describe('Jobs that are not this job-robot\'s, or not made for an item', function () {
    const annotations = { [EVENT_ID_ANNOTATION]: 'foreign-1', [EVENT_SOURCE_ANNOTATION]: SOURCE };
    const cases: Array<[string, string, Record<string, string>, Record<string, string> | undefined, string]> = [
      ['another instance\'s Job', 'other-instance', { [MANAGED_BY_LABEL]: 'job-robot', [INSTANCE_LABEL]: 'blue' }, annotations, 'other-instance'],
      ['a Job job-robot does not manage', 'not-managed', { app: 'someone-else' }, annotations, 'not-owned'],
      ['a job-robot Job without the event annotations', 'no-event', { [MANAGED_BY_LABEL]: 'job-robot' }, undefined, 'no-event'],
    ];
    for (const [what, name, labels, notes, reason] of cases) {
      it(`${what}: 202, nothing written, counted as ${reason}`, async function () {
        const job = plainJob(name, { labels });
        job.spec!.suspend = true;
        if (notes) job.metadata!.annotations = notes;
        await batch.createNamespacedJob({ namespace: ns.name, body: job });
        const before = await metricValue(r.registry, 'job_robot_results_ignored_total', { reason });
        const res = await postApiServerEvent(r.url, 'update', await raw(name));
        expect(res.status).to.equal(202);
        expect(await res.text()).to.equal('');
        expect(await r.record('foreign-1')).to.equal(undefined);
        expect(await metricValue(r.registry, 'job_robot_results_ignored_total', { reason })).to.equal(before + 1);
      });
    }

    it('another kind of object the source might send (the namespace\'s ServiceAccount): ignored as not-a-job', async function () {
      const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'job-robot', namespace: ns.name, uid: 'x' } };
      const res = await postApiServerEvent(r.url, 'add', sa);
      expect(res.status).to.equal(202);
      expect(await metricValue(r.registry, 'job_robot_results_ignored_total', { reason: 'not-a-job' })).to.be.at.least(1);
    });
  });

  it('instance blue: its results function records blue\'s Jobs and marks the outcome jobrobot: blue; the unnamed one ignores them', async function () {
    const blue = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', INSTANCE: 'blue', JOB_NAME_PREFIX: 'blue-' }, { template: template() });
    const blueResults = await startResults(redis.url, { INSTANCE: 'blue' });
    try {
      const name = await launch('blue-1', blue, 'blue-');
      const done = await finish(name, 'Succeeded');
      expect((done.metadata as { labels: Record<string, string> }).labels[INSTANCE_LABEL]).to.equal('blue');
      const res = await postApiServerEvent(blueResults.url, 'update', done, { extensions: { jobrobot: 'blue' } });
      expect(res.status).to.equal(200);
      expect((await outcome(res)).attributes['jobrobot']).to.equal('blue');
      expect((await blueResults.record('blue-1'))!.state).to.equal('succeeded');
      const unnamed = await postApiServerEvent(r.url, 'update', done);
      expect(unnamed.status).to.equal(202);
      expect(await r.record('blue-1')).to.equal(undefined);
    } finally {
      await blueResults.close();
      await blue.close();
    }
  });

});
