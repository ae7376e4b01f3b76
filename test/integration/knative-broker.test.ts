/**
 * The whole Broker between the real bridge and the real launcher: Knative Eventing v0.49.2's own
 * broker ingress, in-memory channel dispatcher and broker filter, config/broker.yaml's Broker and
 * Trigger (status written as the eventing controller would, knative-objects.ts), the dead-letter
 * sink, the control plane and Redis. The bridge runs as a child process with K_SINK at the
 * Broker's address; every hop from the ingress on is Knative's code, and from the ingress on each
 * request goes through the cluster-names proxy, which records it.
 *
 * The one liberty: the bridge reaches the ingress at its local port rather than through the name
 * `broker-ingress.<system>.svc.cluster.local` (the bridge's HTTP agent reads no proxy settings, and
 * the machine's DNS is not changed); the path, `/<namespace>/<broker>`, is the Broker's address.
 */
import { expect } from 'chai';
import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadRedisSettings } from '../../function/config/redis.ts';
import { sourceUrl } from '../../function/kube/event-source.ts';
import { EVENT_SOURCE_ANNOTATION } from '../../function/kube/labels.ts';
import { queueKeys } from '../../function/queue/keys.ts';
import { BridgeProcess, waitUntil } from '../helpers/bridge.ts';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { startDeadLetterSink, type SinkUnderTest } from '../helpers/dead-letter-sink.ts';
import { DISPATCHER_PORTS, privateControlPlaneOnly, startKnative, type KnativePlane } from '../helpers/knative-plane.ts';
import { routeBroker, type BrokerRoute } from '../helpers/knative-objects.ts';
import { useNamespace } from '../helpers/kube.ts';
import { asJobRobot, startLauncher, TEST_TYPE, type TestLauncher } from '../helpers/launcher.ts';
import { deliveredId, deliveredItem } from '../helpers/pipeline.ts';
import { uniquePrefix } from '../helpers/redis.ts';

/** config/bridge.yaml's ContainerSource gives the bridge these extensions; the Trigger filters on `jobrobot`. */
const CE_OVERRIDES = JSON.stringify({ extensions: { jobrobot: 'job-robot' } });
/** The launcher's event size limit here: an item over it is refused 413 and dead-lettered by the Broker. */
const MAX_EVENT_BYTES = 4096;

const markerOf = (job: V1Job): string | undefined => /kb-[0-9a-f]{6}-\d+/.exec(deliveredItem(job)?.bytes.toString('utf8') ?? '')?.[0];

describe('the whole Broker: bridge → broker ingress → in-memory channel → broker filter → launcher (real Knative data plane)', function () {
  this.timeout(180_000);
  const ns = useNamespace('kn-broker');
  let robot: KubeConfig;
  let plane: KnativePlane;
  let launcher: TestLauncher;
  let sink: SinkUnderTest;
  let route: BrokerRoute;
  let redis: Redis;
  const queue = `${uniquePrefix('kn-broker')}queue`;
  const keys = queueKeys(queue);
  const redisUrl = () => process.env['JOB_ROBOT_TEST_REDIS_URL']!;

  before(async function () {
    // A first run on a machine builds Knative's programs (test/cluster/build.ts).
    this.timeout(900_000);
    privateControlPlaneOnly(this);
    robot = await asJobRobot(ns.kc, ns.name);
    redis = new Redis(redisUrl());
    plane = await startKnative(ns.kc, { components: ['ingress', 'filter', 'dispatcher'] });
    launcher = await startLauncher(robot, ns.name, { OIDC_AUTHENTICATION: 'disabled', MAX_ACTIVE_JOBS: '0', MAX_EVENT_BYTES: String(MAX_EVENT_BYTES) });
    // The Broker's dead letters go where the bridge's go: the queue's dead-letter stream (as config/ wires them).
    sink = await startDeadLetterSink(redisUrl(), { OIDC_AUTHENTICATION: 'disabled', QUEUE_KEY: queue });
    route = await routeBroker(plane, ns.name, {
      launcherPort: Number(new URL(launcher.url).port),
      sinkPort: Number(new URL(sink.url).port),
      delivery: { retry: 2, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S' },
    });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && plane) process.stderr.write(`${plane.tails(30)}\n`);
    await BridgeProcess.killAll();
  });
  after(async function () {
    await route?.remove();
    await launcher?.close();
    await sink?.close();
    await plane?.stop();
    redis?.disconnect();
  });

  const bridgeEnv = (over: Record<string, string> = {}) => ({
    REDIS_URL: redisUrl(),
    QUEUE_KEY: queue,
    K_SINK: route.localBrokerUrl!,
    K_CE_OVERRIDES: CE_OVERRIDES,
    CONSUMER: 'kn-broker',
    BACKOFF_MIN_MS: '50',
    BACKOFF_MAX_MS: '500',
    ...over,
  });
  const markers = (n: number) => {
    const tag = randomBytes(3).toString('hex');
    return Array.from({ length: n }, (_, i) => `kb-${tag}-${i}`);
  };
  const jobsByMarker = async () => {
    const jobs = (await ns.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns.name })).items;
    const by = new Map<string, V1Job[]>();
    for (const job of jobs) {
      const m = markerOf(job);
      if (m) by.set(m, [...(by.get(m) ?? []), job]);
    }
    return by;
  };
  const deadLettersOf = async (marker: string) => (await readDeadLetters(sink.client, keys.deadLetter)).filter((d) => d.item.toString('utf8').includes(marker));

  it('each queue item becomes one Job, each hop taken once: the ingress stamps the event and the channel, filter and launcher each answer 202', async function () {
    const items = markers(20);
    const bridge = new BridgeProcess(bridgeEnv());
    await redis.lpush(queue, ...items.map((marker, n) => JSON.stringify({ marker, n })));
    await waitUntil(async () => (await bridge.metric('job_robot_bridge_delivered_total')) === items.length, 60_000, `${items.length} items delivered`);

    // The chain is synchronous (the in-memory channel answers once its subscriber has): by the
    // time the bridge has its 202s, every Job exists.
    const jobs = await jobsByMarker();
    expect(items.filter((m) => jobs.get(m)?.length !== 1), 'items without exactly one Job').to.deep.equal([]);
    const { redis: target } = loadRedisSettings({ REDIS_URL: redisUrl(), QUEUE_KEY: queue });
    for (const m of items) {
      const job = jobs.get(m)![0]!;
      const id = deliveredId(job)!;
      expect(job.metadata!.annotations![EVENT_SOURCE_ANNOTATION], m).to.equal(sourceUrl(target, queue));
      const [toChannel, ...more] = route.toChannel(id);
      expect(more, `${m}: sent to the channel once`).to.deep.equal([]);
      expect(toChannel!.status, m).to.equal(202);
      // What the real ingress adds: the Broker's TTL (MAX_TTL, 255) and the arrival time.
      expect(toChannel!.headers['ce-knativebrokerttl'], m).to.equal('255');
      expect(Date.parse(String(toChannel!.headers['ce-knativearrivaltime']))).to.be.closeTo(toChannel!.at, 5_000);
      expect(toChannel!.headers['ce-jobrobot'], m).to.equal('job-robot');
      expect(toChannel!.headers['ce-type'], m).to.equal(TEST_TYPE);
      expect(route.toFilter(id).map((x) => x.status), m).to.deep.equal([202]);
      expect(route.toLauncher(id).map((x) => x.status), m).to.deep.equal([202]);
    }
    expect(await redis.llen(queue)).to.equal(0);
    expect(await bridge.metric('job_robot_bridge_retried_total')).to.equal(0);
    expect(await readDeadLetters(sink.client, keys.deadLetter)).to.deep.equal([]);
    expect([...plane.names.unknown]).to.deep.equal([]);
    expect((await bridge.terminate()).code).to.equal(0);
  });

  it("what the ingress refuses, and that none of it reaches the channel: not a CloudEvent 400, no Broker at the path 404, a malformed path 400, GET 405, an exhausted TTL 400", async function () {
    const port = plane.ingress!.port;
    const broker = new URL(route.localBrokerUrl!).pathname;
    const ce = (id: string, extra: Record<string, string> = {}) => ({ 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': '/kn-broker-test', 'ce-type': TEST_TYPE, 'ce-jobrobot': 'job-robot', 'content-type': 'application/json', ...extra });
    const post = async (path: string, headers: Record<string, string>, body = '{}', method = 'POST') => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, ...(method === 'POST' ? { body } : {}) });
      await res.arrayBuffer();
      return res.status;
    };
    const channelBefore = plane.names.exchanges.filter((e) => e.host === new URL(route.channelUrl).host).length;
    expect(await post(broker, { 'content-type': 'application/json' }, '{"marker":"plain json"}'), 'not a CloudEvent').to.equal(400);
    expect(await post(broker, { 'content-type': 'application/cloudevents+json' }, '{"specversion":"1.0","id":"no-source","type":"t"}'), 'a structured event without source').to.equal(400);
    expect(await post(`/${ns.name}/no-such-broker`, ce('refused-404')), 'no such Broker').to.equal(404);
    expect(await post(`/${ns.name}`, ce('refused-path')), 'a path without the Broker name').to.equal(400);
    expect(await post('/', ce('refused-root')), 'the root path').to.equal(404);
    expect(await post(broker, ce('refused-get'), '', 'GET'), 'GET').to.equal(405);
    // An event that has come back through the Broker 255 times (a reply loop): the TTL runs out.
    expect(await post(broker, ce('refused-ttl', { 'ce-knativebrokerttl': '1' })), 'TTL exhausted').to.equal(400);
    expect(plane.names.exchanges.filter((e) => e.host === new URL(route.channelUrl).host).length, 'requests to the channel').to.equal(channelBefore);
    // The same event, well-formed, at the Broker's path goes through.
    expect(await post(broker, ce(`accepted-${randomBytes(3).toString('hex')}`), '{"n":1}')).to.equal(202);
  });

  it('K_SINK naming a Broker the ingress does not know: 404, which the bridge takes as the item\'s fault and dead-letters at once', async function () {
    const [item] = markers(1);
    const bridge = new BridgeProcess(bridgeEnv({ K_SINK: route.localBrokerUrl!.replace(/\/[^/]+$/, '/no-such-broker') }));
    await redis.lpush(queue, JSON.stringify({ marker: item }));
    const [letter] = await waitUntil(async () => (await deadLettersOf(item!)).length > 0, 30_000, 'the dead letter').then(() => deadLettersOf(item!));
    expect(letter).to.deep.include({ status: 404, attempts: 1, reason: 'sink answered 404' });
    expect((await jobsByMarker()).get(item!)).to.equal(undefined);
    expect(await bridge.metric('job_robot_bridge_dead_lettered_total', { reason: 'rejected' })).to.equal(1);
    await bridge.terminate();
  });

  it("the channel unreachable for a while: the ingress answers 500, the bridge retries (counted), and once the channel is back the item makes one Job", async function () {
    const [item] = markers(1);
    const channelHost = new URL(route.channelUrl).hostname;
    plane.names.delete(channelHost);
    try {
      const bridge = new BridgeProcess(bridgeEnv({ MAX_ATTEMPTS: '50', BACKOFF_MIN_MS: '100', BACKOFF_MAX_MS: '300' }));
      await redis.lpush(queue, JSON.stringify({ marker: item }));
      await waitUntil(async () => (await bridge.metric('job_robot_bridge_retried_total', { reason: 'server-error' })) >= 3, 30_000, 'three retries of a 5xx');
      const [failed] = bridge.logged('delivery failed; retrying with backoff');
      expect(failed).to.deep.include({ status: 500, reason: 'sink answered 500' });
      plane.names.set(channelHost, DISPATCHER_PORTS[0]);
      await waitUntil(async () => (await bridge.metric('job_robot_bridge_delivered_total')) === 1, 30_000, 'the item delivered');
      const jobs = await jobsByMarker();
      expect(jobs.get(item!)).to.have.length(1);
      expect(await deadLettersOf(item!)).to.deep.equal([]);
      expect(plane.ingress!.lines().some((l) => l['msg'] === 'failed to dispatch event')).to.equal(true);
      await bridge.terminate();
    } finally {
      plane.names.set(channelHost, DISPATCHER_PORTS[0]);
    }
  });

  it('an item the launcher refuses (413, over MAX_EVENT_BYTES) is dead-lettered by the Broker; the ingress then answers the bridge 202 and the bridge acks it', async function () {
    const [item] = markers(1);
    const bridge = new BridgeProcess(bridgeEnv());
    const body = JSON.stringify({ marker: item, blob: 'x'.repeat(MAX_EVENT_BYTES) });
    await redis.lpush(queue, body);
    await waitUntil(async () => (await bridge.metric('job_robot_bridge_delivered_total')) === 1, 30_000, 'the item delivered');
    const [letter, ...more] = await deadLettersOf(item!);
    expect(more).to.deep.equal([]);
    // Written by the dead-letter sink, from what the Broker sent it: the launcher's status and answer.
    expect(letter!.status).to.equal(413);
    expect(letter!.reason).to.contain('the Broker gave up delivering to').and.contain('"error":"too-large"');
    expect(letter!.item.toString('utf8')).to.equal(body);
    expect(JSON.parse(letter!.headers!)).to.include({ 'ce-knativebrokerttl': '255', 'ce-knativeerrorcode': '413' });
    expect((await jobsByMarker()).get(item!)).to.equal(undefined);
    expect(await redis.llen(queue)).to.equal(0);
    expect(await bridge.metric('job_robot_bridge_dead_lettered_total')).to.equal(0);
    await bridge.terminate();
  });

  it('the Broker can neither deliver nor dead-letter (the sink unreachable): the channel answers 500, which the ingress passes on; the bridge keeps the item, and once the sink is back it is dead-lettered once and acked', async function () {
    const [item] = markers(1);
    const sinkHost = new URL(route.sinkUrl).hostname;
    plane.names.delete(sinkHost);
    try {
      const bridge = new BridgeProcess(bridgeEnv({ MAX_ATTEMPTS: '50', BACKOFF_MIN_MS: '200', BACKOFF_MAX_MS: '500' }));
      await redis.lpush(queue, JSON.stringify({ marker: item, blob: 'x'.repeat(MAX_EVENT_BYTES) }));
      await waitUntil(async () => (await bridge.metric('job_robot_bridge_retried_total', { reason: 'server-error' })) >= 2, 30_000, 'two retries of a 5xx');
      const [failed] = bridge.logged('delivery failed; retrying with backoff');
      expect(failed).to.deep.include({ status: 500, reason: 'sink answered 500' });
      const id = String(failed!['eventId']);
      expect(route.toChannel(id)[0]?.status, "the channel's answer to the ingress").to.equal(500);
      expect(await deadLettersOf(item!)).to.deep.equal([]);
      plane.names.set(sinkHost, Number(new URL(sink.url).port));
      await waitUntil(async () => (await bridge.metric('job_robot_bridge_delivered_total')) === 1, 30_000, 'the item acked');
      const letters = await deadLettersOf(item!);
      expect(letters.map((l) => [l.id, l.status]), 'dead letters').to.deep.equal([[id, 413]]);
      expect(route.toChannel(id).at(-1)?.status).to.equal(202);
      expect(await redis.llen(queue)).to.equal(0);
      await bridge.terminate();
    } finally {
      plane.names.set(sinkHost, Number(new URL(sink.url).port));
    }
  });
});
