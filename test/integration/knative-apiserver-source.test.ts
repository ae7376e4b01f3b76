/**
 * Knative's own ApiServerSource receive adapter (cmd/apiserver_receive_adapter, knative.dev/eventing
 * v0.49.2) watching job-robot's Jobs on the real control plane with the real job controller, as
 * an ApiServerSource in Resource mode on the managed-by label would: what it sends a plain local
 * receiver (its K_SINK) for each Job, and what it does when the receiver fails, is away, or the
 * adapter itself restarts. These findings decide what the results function can rely on:
 * - each add, update and delete is sent once, synchronously and in order, with a fresh random id;
 * - a 500 (or any status but 404, 413, 425, 429, 502, 503, 504) is not retried; those and a
 *   refused connection are retried 5 times over about 3 s; then the event is dropped for good;
 * - a restarted adapter sends nothing for the Jobs it lists (its store's Replace and Resync do
 *   nothing): whatever happened while it was away, or was dropped, is never sent.
 */
import { expect } from 'chai';
import { BatchV1Api, type V1Job } from '@kubernetes/client-node';
import { jobEvent, jobOutcome } from '../../function/kube/job-outcome.ts';
import { EVENT_ID_ANNOTATION, IDENTITY_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ownerLabels } from '../../function/kube/labels.ts';
import { buildJob, type JobSettings } from '../../function/launcher/job.ts';
import { freePort } from '../cluster/ports.ts';
import { REFERENCE_EVENT_TYPES, RESOURCE_EVENT_TYPES, startApiServerSource, type RunningApiServerSource } from '../helpers/apiserver-source.ts';
import { RecordingSink, type Delivery } from '../helpers/bridge.ts';
import { plainJob, waitForJobCondition } from '../helpers/jobs.ts';
import { privateControlPlaneOnly } from '../helpers/knative-plane.ts';
import { startKubeletStandIn } from '../helpers/kubelet.ts';
import { eventually, useNamespace } from '../helpers/kube.ts';

/** The ApiServerSource's spec.resources[0].selector as job-robot's manifests will give it. */
const SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
/** spec.ceOverrides.extensions: lets a Trigger pick job-robot's Job events out of the Broker. */
const OVERRIDES = { jobrobotwatch: 'jobs' };
const SETTINGS: JobSettings = { prefix: 'apiss-', ttlSeconds: 86_400, serviceAccount: 'default' };
const SOURCE = '/apiserversource-test';

/** The Job the launcher builds for event `id`: job-robot's labels and annotations. */
const robotJob = (id: string, suspend = false): V1Job => {
  const job = buildJob(plainJob('template'), SETTINGS, { source: SOURCE, id, type: 'dev.job-robot.queue.item', env: [] });
  if (suspend) job.spec!.suspend = true;
  return job;
};

/** The cloud-event retry span of one send: 5 retries after 0.1, 0.2, 0.4, 0.8 and 1.6 s (events.go, 50 ms exponential, 5). */
const RETRY_GAPS_MS = [100, 200, 400, 800, 1_600];
const RETRY_SPAN_MS = RETRY_GAPS_MS.reduce((a, b) => a + b, 0);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const header = (d: Delivery, name: string) => String(d.headers[name] ?? '');

/**
 * Mocha hooks: a namespace, a recording sink (answering 202 unless a test says otherwise) and the
 * adapter of an ApiServerSource there on job-robot's label, sending to the sink in `mode`.
 */
function useWatchedNamespace(prefix: string, mode: 'Resource' | 'Reference' = 'Resource') {
  const ns = useNamespace(prefix);
  const ctx = { ns, sink: new RecordingSink() } as { ns: typeof ns; sink: RecordingSink; source: RunningApiServerSource; batch: BatchV1Api };
  before(async function () {
    // A first run on a machine builds the adapter (test/cluster/build.ts).
    this.timeout(900_000);
    privateControlPlaneOnly(this);
    // Below the ephemeral range: the sink restarts on its port after being down.
    await ctx.sink.start(await freePort());
    ctx.batch = ns.kc.makeApiClient(BatchV1Api);
    ctx.source = await startApiServerSource(ns.kc, { namespace: ns.name, sink: ctx.sink.url, selector: SELECTOR, mode, ceOverrides: OVERRIDES });
  });
  beforeEach(function () {
    ctx.sink.respond = () => 202;
  });
  after(async function () {
    try {
      await ctx.source?.stop();
    } finally {
      await ctx.sink.stop();
    }
  });
  return ctx;
}

describe('Knative ApiServerSource adapter on job-robot\'s Jobs (real apiserver_receive_adapter, real job controller)', function () {
  this.timeout(120_000);
  const w = useWatchedNamespace('kn-apiss');
  const about = (name: string) => w.sink.deliveries.filter((d) => header(d, 'ce-name') === name);
  const typed = (name: string, type: string) => about(name).filter((d) => d.type === type);
  const data = (d: Delivery) => JSON.parse(d.body.toString('utf8')) as V1Job;
  const failIfSlow = (err: Error) => {
    err.message += `\n--- adapter (whole log: ${w.source.logFile}) ---\n${w.source.log().slice(-4000)}`;
    throw err;
  };

  it('a labelled Job\'s life arrives as add, then updates, then delete, each carrying the whole Job (its Complete or Failed condition once finished) and the ceOverrides extension; Jobs without the label, or with another manager\'s, send nothing', async function () {
    const { ns, batch, source } = w;
    const ok = robotJob('life-ok');
    const bad = robotJob('life-bad');
    const kubelet = startKubeletStandIn(ns.kc, ns.name, {
      runMs: 300,
      outcome: (pod) => (pod.metadata?.labels?.['batch.kubernetes.io/job-name'] === bad.metadata!.name ? 'Failed' : 'Succeeded'),
    });
    try {
      const unlabelled = plainJob('unlabelled');
      const foreign = plainJob('foreign', { labels: { [MANAGED_BY_LABEL]: 'someone-else' } });
      for (const body of [ok, bad, unlabelled, foreign]) await batch.createNamespacedJob({ namespace: ns.name, body });
      for (const job of [ok, bad, unlabelled, foreign]) await waitForJobCondition(ns.kc, ns.name, job.metadata!.name!, 60_000);
      const finishedUpdate = (name: string) => typed(name, RESOURCE_EVENT_TYPES.update).find((d) => jobOutcome(data(d)).state !== 'created');
      await eventually(async () => finishedUpdate(ok.metadata!.name!) && finishedUpdate(bad.metadata!.name!), 30_000, 'updates carrying the finished Jobs').catch(failIfSlow);
      for (const job of [ok, bad, unlabelled, foreign]) await batch.deleteNamespacedJob({ name: job.metadata!.name!, namespace: ns.name, propagationPolicy: 'Background' });
      await eventually(async () => typed(ok.metadata!.name!, RESOURCE_EVENT_TYPES.delete).length && typed(bad.metadata!.name!, RESOURCE_EVENT_TYPES.delete).length, 30_000, 'delete events').catch(failIfSlow);
    } finally {
      await kubelet.stop();
    }
    // Events for the other two would have come in the same order as theirs: give stragglers a moment.
    await sleep(1_000);
    expect(about('unlabelled'), 'a Job without the managed-by label').to.deep.equal([]);
    expect(about('foreign'), "a Job with another manager's label").to.deep.equal([]);

    for (const [job, state, reason] of [[ok, 'succeeded', 'CompletionsReached'], [bad, 'failed', 'BackoffLimitExceeded']] as const) {
      const name = job.metadata!.name!;
      const events = about(name);
      const types = events.map((d) => d.type);
      expect(types[0], `${name}: first event`).to.equal(RESOURCE_EVENT_TYPES.add);
      expect(types.at(-1), `${name}: last event`).to.equal(RESOURCE_EVENT_TYPES.delete);
      expect(types.slice(1, -1), `${name}: between add and delete`).to.have.length.greaterThan(0);
      expect(new Set(types.slice(1, -1)), `${name}: between add and delete`).to.deep.equal(new Set([RESOURCE_EVENT_TYPES.update]));
      for (const d of events) {
        expect(header(d, 'ce-specversion')).to.equal('1.0');
        expect(d.source, 'source: the API server the adapter watches').to.equal(source.apiServer);
        expect(header(d, 'ce-subject')).to.equal(`/apis/batch/v1/namespaces/${ns.name}/jobs/${name}`);
        expect([header(d, 'ce-kind'), header(d, 'ce-apiversion'), header(d, 'ce-namespace')]).to.deep.equal(['Job', 'batch/v1', ns.name]);
        expect(header(d, 'ce-jobrobotwatch'), 'the ceOverrides extension').to.equal('jobs');
        expect(header(d, 'kn-namespace'), 'the source\'s namespace').to.equal(ns.name);
        expect(d.contentType).to.equal('application/json');
        const body = data(d);
        expect([body.apiVersion, body.kind, body.metadata?.name], 'data: the Job itself').to.deep.equal(['batch/v1', 'Job', name]);
        expect(body.metadata?.labels).to.include({ ...ownerLabels(), [IDENTITY_LABEL]: job.metadata!.labels![IDENTITY_LABEL] });
        expect(jobEvent(body), 'the event the Job was made for, from its annotations').to.deep.equal({ id: job.metadata!.annotations![EVENT_ID_ANNOTATION], source: SOURCE });
        expect(body.spec?.template.spec?.containers[0]?.name, 'data: the whole Job, spec included').to.equal('main');
      }
      expect(jobOutcome(data(events[0]!)).state, `${name}: the add carries the new Job`).to.equal('created');
      const outcome = jobOutcome(data(events.find((d) => jobOutcome(data(d)).state !== 'created')!));
      expect([outcome.state, outcome.reason], `${name}: the first update with a terminal condition`).to.deep.equal([state, reason]);
      expect(jobOutcome(data(events.at(-1)!)).state, `${name}: the delete carries the Job as last seen`).to.equal(state);
    }
    // Every event gets a fresh random id: the id tells nothing about the Job or the change.
    const ids = [...about(ok.metadata!.name!), ...about(bad.metadata!.name!)].map((d) => d.id);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const id of ids) expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('a sink answering 500 gets each event once: no retry, the event is dropped, and the next event is sent', async function () {
    const { ns, batch, sink, source } = w;
    const lost = robotJob('answer-500', true);
    const next = robotJob('after-500', true);
    const lostName = lost.metadata!.name!;
    sink.respond = (req) => (req.headers['ce-name'] === lostName ? 500 : 202);
    await batch.createNamespacedJob({ namespace: ns.name, body: lost });
    await eventually(async () => typed(lostName, RESOURCE_EVENT_TYPES.add).length, 15_000, 'the add answered 500').catch(failIfSlow);
    await sleep(RETRY_SPAN_MS + 1_000);
    await batch.createNamespacedJob({ namespace: ns.name, body: next });
    await eventually(async () => typed(next.metadata!.name!, RESOURCE_EVENT_TYPES.add).length, 15_000, 'the next Job\'s add').catch(failIfSlow);
    expect(typed(lostName, RESOURCE_EVENT_TYPES.add).map((d) => d.status)).to.deep.equal([500]);
    const failed = source.lines().filter((l) => l['msg'] === 'failed to send cloudevent' && String(l['subject']).endsWith(`/jobs/${lostName}`));
    expect(failed.length, 'logged as failed').to.be.greaterThan(0);
    expect(String(failed[0]!['error'])).to.not.match(/\(\d+x\)/);
  });

  it('a sink answering 503 gets each event 6 times (5 retries 0.1 to 1.6 s apart, same id), then the event is dropped; events behind it wait their turn', async function () {
    const { ns, batch, sink, source } = w;
    const lost = robotJob('answer-503', true);
    const behind = robotJob('behind-503', true);
    const lostName = lost.metadata!.name!;
    sink.respond = (req) => (req.headers['ce-name'] === lostName && req.headers['ce-type'] === RESOURCE_EVENT_TYPES.add ? 503 : 202);
    await batch.createNamespacedJob({ namespace: ns.name, body: lost });
    await eventually(async () => typed(lostName, RESOURCE_EVENT_TYPES.add).length, 15_000, 'the first attempt').catch(failIfSlow);
    await batch.createNamespacedJob({ namespace: ns.name, body: behind });
    const behindAdd = await eventually(async () => typed(behind.metadata!.name!, RESOURCE_EVENT_TYPES.add)[0], 15_000, 'the add behind it').catch(failIfSlow);
    await sleep(RETRY_SPAN_MS);

    const attempts = typed(lostName, RESOURCE_EVENT_TYPES.add);
    expect(attempts.map((d) => d.status)).to.deep.equal([503, 503, 503, 503, 503, 503]);
    expect(new Set(attempts.map((d) => d.id)).size, 'one event, resent as it was').to.equal(1);
    const gaps = attempts.slice(1).map((d, i) => d.at - attempts[i]!.at);
    gaps.forEach((gap, i) => expect(gap, `gap ${i + 1} of ${JSON.stringify(gaps.map(Math.round))}`).to.be.within(RETRY_GAPS_MS[i]! - 10, RETRY_GAPS_MS[i]! + 750));
    expect(behindAdd.at, 'the next event waits for the last attempt').to.be.greaterThan(attempts.at(-1)!.at);
    expect(behindAdd.status).to.equal(202);
    const failed = source.lines().find((l) => l['msg'] === 'failed to send cloudevent' && String(l['subject']).endsWith(`/jobs/${lostName}`) && l['id'] === attempts[0]!.id);
    expect(String(failed?.['error'])).to.match(/503.*\(5x\)/);
  });

  it('a sink that is down costs each event 6 connection attempts (5 retries, logged "(5x)"), then the event is dropped: not sent when the sink is back', async function () {
    const { ns, batch, sink, source } = w;
    const lost = robotJob('sink-down', true);
    const later = robotJob('sink-back', true);
    const lostName = lost.metadata!.name!;
    const port = sink.port;
    await sink.stop();
    try {
      await batch.createNamespacedJob({ namespace: ns.name, body: lost });
      const failed = await eventually(
        async () => source.lines().find((l) => l['msg'] === 'failed to send cloudevent' && String(l['subject']).endsWith(`/jobs/${lostName}`)),
        15_000,
        'the adapter to give up on the add',
      ).catch(failIfSlow);
      expect(String(failed['error'])).to.match(/connection refused \(5x\)/);
    } finally {
      await sink.start(port);
    }
    // The Job controller's first status write (Suspended) may have been tried while the sink was down, too.
    await sleep(RETRY_SPAN_MS + 500);
    await batch.createNamespacedJob({ namespace: ns.name, body: later });
    await eventually(async () => typed(later.metadata!.name!, RESOURCE_EVENT_TYPES.add).length, 15_000, 'the add after the sink is back').catch(failIfSlow);
    expect(typed(lostName, RESOURCE_EVENT_TYPES.add), 'the add that failed').to.deep.equal([]);
    // The Job is known again only through its next change.
    await batch.patchNamespacedJob({ name: lostName, namespace: ns.name, body: [{ op: 'add', path: '/metadata/annotations/touched', value: 'yes' }] });
    const update = await eventually(async () => typed(lostName, RESOURCE_EVENT_TYPES.update).find((d) => data(d).metadata?.annotations?.['touched'] === 'yes'), 15_000, 'the update').catch(failIfSlow);
    expect(update.status).to.equal(202);
  });
});

describe('Knative ApiServerSource adapter restarts: what it sends for Jobs it finds (real apiserver_receive_adapter)', function () {
  this.timeout(120_000);
  const w = useWatchedNamespace('kn-apiss-restart');
  const about = (name: string, since = 0) => w.sink.deliveries.filter((d) => header(d, 'ce-name') === name && d.at >= since);
  const failIfSlow = (err: Error) => {
    err.message += `\n--- adapter (whole log: ${w.source.logFile}) ---\n${w.source.log().slice(-4000)}`;
    throw err;
  };
  const touch = (name: string, value: string) =>
    w.batch.patchNamespacedJob({ name, namespace: w.ns.name, body: [{ op: 'add', path: '/metadata/annotations/touched', value }] });
  /** Waits until the job controller has written a suspended Job's Suspended condition: its last write to it. */
  const suspended = (name: string) =>
    eventually(async () => (await w.batch.readNamespacedJob({ name, namespace: w.ns.name })).status?.conditions?.some((c) => c.type === 'Suspended' && c.status === 'True'), 15_000, `${name} to be marked Suspended`);
  /** The update that carried the Suspended condition, once the sink has it. */
  const suspendedUpdate = (name: string) =>
    eventually(async () => about(name).find((d) => d.type === RESOURCE_EVENT_TYPES.update && (JSON.parse(d.body.toString('utf8')) as V1Job).status?.conditions?.some((c) => c.type === 'Suspended')), 15_000, `the update marking ${name} Suspended`).catch(failIfSlow);

  it('a restart re-sends no add for the Jobs already there (no informer resync): only their next change is sent', async function () {
    const { ns, batch, source } = w;
    const names: string[] = [];
    for (const id of ['there-1', 'there-2']) names.push((await batch.createNamespacedJob({ namespace: ns.name, body: robotJob(id, true) })).metadata!.name!);
    for (const name of names) await suspendedUpdate(name);
    const before = Date.now();
    await source.restart();
    expect(source.starts()).to.equal(2);
    await sleep(3_000);
    for (const name of names) expect(about(name, before), `${name} after the restart`).to.deep.equal([]);
    await touch(names[0]!, 'after-restart');
    const next = await eventually(async () => about(names[0]!, before)[0], 15_000, 'the change after the restart').catch(failIfSlow);
    expect(next.type).to.equal(RESOURCE_EVENT_TYPES.update);
  });

  it('what happens to Jobs while the adapter is down is never sent: a Job created then gets no add, a change then no update; the next change arrives as an update', async function () {
    const { ns, batch, source } = w;
    const known = (await batch.createNamespacedJob({ namespace: ns.name, body: robotJob('known-before', true) })).metadata!.name!;
    await suspendedUpdate(known);
    await source.kill('SIGKILL');
    const down = Date.now();
    const unseen = (await batch.createNamespacedJob({ namespace: ns.name, body: robotJob('created-while-down', true) })).metadata!.name!;
    await suspended(unseen);
    await touch(known, 'while-down');
    await source.restart();
    await sleep(3_000);
    expect(about(unseen), 'the Job created while the adapter was down').to.deep.equal([]);
    expect(about(known, down), 'the change made while the adapter was down').to.deep.equal([]);

    await touch(unseen, 'after-restart');
    const first = await eventually(async () => about(unseen)[0], 15_000, 'the first event for the Job created while down').catch(failIfSlow);
    expect(first.type, 'its first event').to.equal(RESOURCE_EVENT_TYPES.update);
    expect(JSON.parse(first.body.toString('utf8')).metadata.annotations).to.include({ touched: 'after-restart' });
  });
});

describe('Knative ApiServerSource adapter in Reference mode (real apiserver_receive_adapter)', function () {
  this.timeout(120_000);
  const w = useWatchedNamespace('kn-apiss-ref', 'Reference');

  it('sends only a reference to the Job (no labels, annotations or status): the results function needs Resource mode', async function () {
    const { ns, batch, sink } = w;
    const name = (await batch.createNamespacedJob({ namespace: ns.name, body: robotJob('by-reference', true) })).metadata!.name!;
    const add = await eventually(async () => sink.deliveries.find((d) => header(d, 'ce-name') === name), 15_000, 'the add');
    expect(add.type).to.equal(REFERENCE_EVENT_TYPES.add);
    expect(JSON.parse(add.body.toString('utf8'))).to.deep.equal({ kind: 'Job', namespace: ns.name, name, apiVersion: 'batch/v1' });
  });
});
