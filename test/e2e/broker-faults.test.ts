/**
 * The pipeline through Knative's own Broker under faults: 2,000 items pushed onto the Redis queue
 * while the bridge is killed with SIGKILL (and restarted) five times and the launcher five times.
 * Between them runs the whole Broker of knative-broker.test.ts: Knative Eventing v0.49.2's broker
 * ingress, in-memory channel dispatcher and broker filter, config/broker.yaml's Broker and Trigger
 * (its delivery shortened to seconds), and the dead-letter sink writing to the queue's dead-letter
 * stream. A watch notes every Job the namespace ever held; each Job's CE_DATA gives back its item.
 *
 * What is claimed: every item has exactly one Job and none is lost or dead-lettered; no event id
 * has a second Job. The launcher's kills are covered by the Broker: a delivery the launcher does
 * not answer (killed, or not back yet) the filter answers the dispatcher 500, and the dispatcher
 * retries with the Trigger's delivery; an event
 * whose Job was created just before a kill comes again and is answered 202 (the Job's name is
 * its identity; the API server's 409). The bridge's kills are covered by the bridge: an item is
 * acked only after the ingress's 2xx, which the in-memory channel gives only once its subscriber
 * has answered (its handler is synchronous), so a successor resends whatever was in flight under
 * the same event id.
 *
 * What is not claimed: anything about the in-memory channel's own durability. It holds events in
 * memory only; the dispatcher and the ingress are not killed here. The Jobs are created suspended
 * (no pods, no kubelet, no reaper): this test is about delivery, and 2,000 pods would only load the
 * shared machine.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { BatchV1Api } from '@kubernetes/client-node';
import { allKeys, pause } from '../helpers/bridge.ts';
import { readDeadLetters, type DeadLetter } from '../helpers/dead-letters.ts';
import { startDeadLetterSink, type SinkUnderTest } from '../helpers/dead-letter-sink.ts';
import type { LedgerEntry } from '../helpers/job-ledger.ts';
import { routeBroker, type BrokerRoute } from '../helpers/knative-objects.ts';
import { privateControlPlaneOnly, startKnative, type KnativePlane } from '../helpers/knative-plane.ts';
import { eventually } from '../helpers/kube.ts';
import { crashBridge, crashLauncher, faultPoint } from '../helpers/faults.ts';
import { deliveredId, deliveredItem, shippedTemplate, type Component } from '../helpers/pipeline.ts';
import { usePipelineRun } from '../helpers/pipeline-run.ts';

const TOTAL = 2_000;
const BATCH = 20;
const PUSH_EVERY_MS = 400;
type Fault = 'bridge' | 'launcher';
/** Interleaved, each at the next step of progress (Jobs seen), so every fault lands while items flow. */
const FAULTS: Fault[] = ['bridge', 'launcher', 'bridge', 'launcher', 'bridge', 'launcher', 'bridge', 'launcher', 'bridge', 'launcher'];
/** The Broker's name in config/broker.yaml. */
const BROKER = 'job-robot';

const markerOf = (bytes: Buffer): string | undefined => /bf-[0-9a-f]{6}-\d{4}/.exec(bytes.toString('latin1'))?.[0];

interface Outcome {
  pushed: number;
  jobs: LedgerEntry[];
  deadLetters: DeadLetter[];
  faults: Record<Fault, number>;
  /** Per event id, in order: the launcher's answers as the filter saw them (0: none, the connection cut or refused). */
  launcherAnswers: Map<string, number[]>;
  /** Per event id, in order: the filter's answers to the dispatcher. */
  filterAnswers: Map<string, number[]>;
  /** Per event id: how many times the ingress sent it into the channel (more than once: the bridge resent it). */
  intoChannel: Map<string, number>;
}

describe("pipeline through Knative's Broker under faults: 2,000 items while the bridge and the launcher are killed -9", function () {
  this.timeout(600_000);
  let plane: KnativePlane | undefined;
  let sink: SinkUnderTest | undefined;
  let route: BrokerRoute | undefined;
  // Before the pipeline's own clean-up (hooks run in the order registered): the route and the
  // plane go while the namespace is still there.
  after(async function () {
    await route?.remove().catch(() => undefined);
    await sink?.close();
    await plane?.stop();
  });
  const run = usePipelineRun('e2e-broker');
  let outcome: Outcome | undefined;
  let progress: NodeJS.Timeout | undefined;
  const markers: string[] = [];
  before(async function () {
    this.timeout(900_000);
    privateControlPlaneOnly(this);
    plane = await startKnative(run.ns.kc, { components: ['ingress', 'filter', 'dispatcher'] });
  });
  after(function () {
    clearInterval(progress);
  });

  it('runs: items pushed through the Broker, faults injected, everything settles', async function () {
    const { ns, redis, ledger } = run;
    const t0 = Date.now();
    const withJob = new Set<string>();
    ledger.onNew((e) => withJob.add(markerOf(deliveredItem(e.job)?.bytes ?? Buffer.alloc(0)) ?? e.name));
    const template = shippedTemplate();
    template.spec = { ...template.spec!, suspend: true };
    const p = await run.start({
      template,
      launcherEnv: { MAX_ACTIVE_JOBS: '0', KUBE_TIMEOUT_SECONDS: '5', LOG_LEVEL: 'warn' },
      bridgeEnv: {
        // The Broker's address at the ingress's local port; the ContainerSource's extensions.
        K_SINK: `http://127.0.0.1:${plane!.ingress!.port}/${ns.name}/${BROKER}`,
        K_CE_OVERRIDES: JSON.stringify({ extensions: { jobrobot: 'job-robot' } }),
        CONSUMER: 'bridge-0',
        LEASE_MS: '3000',
        BACKOFF_MIN_MS: '50',
        BACKOFF_MAX_MS: '2000',
        SEND_TIMEOUT_MS: '20000',
      },
      reaper: false,
      kubelet: false,
    });
    sink = await startDeadLetterSink(process.env['JOB_ROBOT_TEST_REDIS_URL']!, { OIDC_AUTHENTICATION: 'disabled', QUEUE_KEY: run.queue });
    // Retries while the launcher is down: 0.1 s doubling, ten of them (about 100 s in all).
    route = await routeBroker(plane!, ns.name, {
      launcherPort: p.launcher.port,
      sinkPort: Number(new URL(sink.url).port),
      delivery: { retry: 10, backoffPolicy: 'exponential', backoffDelay: 'PT0.1S' },
    });
    const launcherHost = new URL(route.launcherUrl).host;
    const channelHost = new URL(route.channelUrl).host;
    const tag = randomBytes(3).toString('hex');
    for (let i = 0; i < TOTAL; i++) markers.push(`bf-${tag}-${String(i).padStart(4, '0')}`);

    let pushed = 0;
    const producer = (async () => {
      for (let i = 0; i < TOTAL; i += BATCH) {
        const items = markers.slice(i, i + BATCH).map((marker, j) => JSON.stringify({ marker, n: i + j, note: 'through the Broker under faults' }));
        await redis.lpush(run.queue, ...items);
        pushed += items.length;
        await pause(PUSH_EVERY_MS);
      }
    })();

    const toLauncher = () => plane!.names.exchanges.filter((e) => e.host === launcherHost);
    const faults: Record<Fault, number> = { bridge: 0, launcher: 0 };
    progress = setInterval(() => {
      const metric = (c: Component, name: string) => (c.alive ? c.metric(name).catch(() => NaN) : Promise.resolve(NaN));
      const refused = toLauncher().filter((e) => e.status !== 202).length;
      void Promise.all([redis.llen(run.queue), metric(p.bridge, 'job_robot_bridge_retried_total'), metric(p.bridge, 'job_robot_bridge_in_flight')])
        .then(([depth, retried, inFlight]) =>
          process.stderr.write(
            `      ${((Date.now() - t0) / 1000).toFixed(0)}s: pushed ${pushed}, queue ${depth}, Jobs seen ${ledger.entries.size}; launcher answered ${toLauncher().length} (${refused} not 202); bridge in flight ${inFlight} retried ${retried}\n`,
          ),
        )
        .catch(() => undefined);
    }, 10_000);
    const deadLetterCount = () => redis.xlen(p.keys.deadLetter);
    for (const [k, fault] of FAULTS.entries()) {
      const through = await faultPoint(k, FAULTS.length, TOTAL, async () => ledger.entries.size + (await deadLetterCount()), fault).catch((err: Error) => {
        err.message += `\n${plane!.tails()}`;
        throw err;
      });
      const at = ((Date.now() - t0) / 1000).toFixed(1);
      if (fault === 'bridge') await crashBridge(p.bridge, faults.bridge);
      else await crashLauncher(p.launcher);
      faults[fault] += 1;
      process.stderr.write(`      ${at}s: ${fault} killed -9 and restarted with ${through} of ${TOTAL} items through\n`);
    }
    await producer;

    await eventually(async () => withJob.size + (await deadLetterCount()) >= TOTAL, 180_000, `all ${TOTAL} items to have a Job or a dead letter`).catch((err: Error) => {
      err.message += `\n${plane!.tails()}`;
      throw err;
    });
    // Whatever is still in flight (a resend after a kill) settles before the count.
    await eventually(async () => (await redis.llen(run.queue)) === 0 && (await p.bridge.metric('job_robot_bridge_in_flight')) === 0, 60_000, 'the bridge to hold nothing');
    await eventually(async () => (await redis.zcard(p.keys.consumers)) === 1, 30_000, 'only the live consumer to hold a lease');
    clearInterval(progress);
    const exit = await p.bridge.terminate();
    expect(exit, 'the bridge stops cleanly on SIGTERM').to.deep.equal({ code: 0, signal: null });

    const answersBy = (host: string) => {
      const by = new Map<string, number[]>();
      for (const e of plane!.names.exchanges.filter((x) => x.host === host)) {
        const id = String(e.headers['ce-id']);
        by.set(id, [...(by.get(id) ?? []), e.status]);
      }
      return by;
    };
    const launcherAnswers = answersBy(launcherHost);
    const filterAnswers = answersBy(new URL(plane!.filterUrl).host);
    const intoChannel = new Map<string, number>();
    for (const e of plane!.names.exchanges.filter((x) => x.host === channelHost)) intoChannel.set(String(e.headers['ce-id']), (intoChannel.get(String(e.headers['ce-id'])) ?? 0) + 1);
    outcome = { pushed, jobs: ledger.all(), deadLetters: await readDeadLetters(redis, p.keys.deadLetter), faults, launcherAnswers, filterAnswers, intoChannel };
    const byStatus: Record<string, number> = {};
    for (const statuses of launcherAnswers.values()) for (const s of statuses) byStatus[s] = (byStatus[s] ?? 0) + 1;
    const counts = {
      pushed,
      jobs: outcome.jobs.length,
      deadLettered: outcome.deadLetters.length,
      bridgeKills: faults.bridge,
      launcherKills: faults.launcher,
      launcherAnswers: byStatus,
      eventsRetriedByTheBroker: [...launcherAnswers.values()].filter((xs) => xs.some((x) => x !== 202)).length,
      eventsIntoTheChannel: [...intoChannel.values()].reduce((a, b) => a + b, 0),
      eventsResentByTheBridge: [...intoChannel.values()].filter((n) => n > 1).length,
      seconds: Math.round((Date.now() - t0) / 1000),
    };
    process.stderr.write(`      counts: ${JSON.stringify(counts)}\n`);
    expect(pushed).to.equal(TOTAL);
    expect(faults).to.deep.equal({ bridge: 5, launcher: 5 });
  });

  it('every item has exactly one Job and none is dead-lettered: none lost, none duplicated', function () {
    if (!outcome) throw new Error('the fault run above did not finish, so there is nothing to check');
    const jobsOf = new Map<string, LedgerEntry[]>();
    for (const e of outcome.jobs) {
      const marker = markerOf(deliveredItem(e.job)?.bytes ?? Buffer.alloc(0));
      expect(marker, `Job ${e.name} carries an item of this run`).to.be.a('string');
      jobsOf.set(marker!, [...(jobsOf.get(marker!) ?? []), e]);
    }
    const lost = markers.filter((m) => !jobsOf.has(m));
    const twice = markers.filter((m) => (jobsOf.get(m)?.length ?? 0) > 1).map((m) => ({ item: m, jobs: jobsOf.get(m)!.map((e) => `${e.name} (event ${e.eventId})`) }));
    expect(lost.length, `${lost.length} items without a Job, e.g. ${lost.slice(0, 5).join(', ')}`).to.equal(0);
    expect(twice.length, `${twice.length} items with more than one Job, e.g. ${JSON.stringify(twice.slice(0, 3))}`).to.equal(0);
    // Neither the bridge nor the Broker gave up on an item: the kills were all covered by retries.
    expect(outcome.deadLetters.map((d) => d.reason), 'dead letters').to.deep.equal([]);
  });

  it("the launcher's kills were covered by the Broker's retries, the bridge's by its resends under the same event id", function () {
    if (!outcome) throw new Error('the fault run above did not finish, so there is nothing to check');
    const { launcherAnswers, filterAnswers, intoChannel } = outcome;
    // An event the launcher did not answer (killed, or not yet back) was sent again until the
    // launcher answered 202. Sent into the channel once and delivered more than once: the
    // dispatcher's retries (through the filter), not the bridge's.
    const failed = [...launcherAnswers].filter(([, xs]) => xs.some((x) => x !== 202));
    expect(failed.filter(([, xs]) => xs.at(-1) !== 202).slice(0, 5), 'events whose last answer from the launcher was not 202').to.deep.equal([]);
    const byBroker = failed.filter(([id]) => intoChannel.get(id) === 1);
    expect(byBroker.length, 'events retried by the Broker alone (zero: no launcher kill landed on a delivery, and nothing was tested)').to.be.above(0);
    // The filter passed each failure back as 500 (it sends once and does not retry).
    const filterSaid = byBroker.filter(([id, xs]) => JSON.stringify(filterAnswers.get(id)) !== JSON.stringify(xs.map((x) => (x === 0 ? 500 : x))));
    expect(filterSaid.slice(0, 3).map(([id, xs]) => ({ id, launcher: xs, filter: filterAnswers.get(id) })), "the filter's answers to the dispatcher, where the launcher gave none").to.deep.equal([]);
    // The bridge's successor resent what its predecessor had in flight: the same id, one Job.
    const resent = [...intoChannel].filter(([, n]) => n > 1).map(([id]) => id);
    expect(resent.length, 'events the bridge sent twice (zero: no kill landed on a send in flight)').to.be.above(0);
    const jobsPerId = new Map<string, number>();
    for (const e of outcome.jobs) jobsPerId.set(e.eventId, (jobsPerId.get(e.eventId) ?? 0) + 1);
    expect(resent.filter((id) => jobsPerId.get(id) !== 1), 'resent events without exactly one Job').to.deep.equal([]);
  });

  it("each Job carries its event identity: one Job per event id, ever, and the bridge's source", function () {
    if (!outcome) throw new Error('the fault run above did not finish, so there is nothing to check');
    const byId = new Map<string, LedgerEntry[]>();
    for (const e of outcome.jobs) byId.set(e.eventId, [...(byId.get(e.eventId) ?? []), e]);
    const recreated = [...byId].filter(([, es]) => es.length > 1).map(([id, es]) => ({ id, jobs: es.map((e) => `${e.name} ${e.uid}`) }));
    expect(recreated.length, `${recreated.length} event ids with a second Job, e.g. ${JSON.stringify(recreated.slice(0, 3))}`).to.equal(0);
    for (const e of outcome.jobs) {
      expect(deliveredId(e.job), `${e.name}'s CE_ID`).to.equal(e.eventId);
      expect(e.eventSource, `${e.name}'s event source`).to.equal(run.pipe.source);
    }
  });

  it('the namespace holds exactly those Jobs, and Redis no claims, leases or attempts', async function () {
    if (!outcome) throw new Error('the fault run above did not finish, so there is nothing to check');
    const jobs = await run.ns.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: run.ns.name });
    expect(jobs.items.length).to.equal(TOTAL);
    const { keys } = run.pipe;
    // Result records stay for their retention; the results stream and the dead-letter stream are kept.
    const left = (await allKeys(run.redis)).filter((k) => k.includes(keys.queue) && k !== keys.deadLetter && k !== keys.results && !k.startsWith(keys.resultPrefix));
    expect(left).to.deep.equal([]);
  });
});
