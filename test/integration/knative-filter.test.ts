/**
 * Knative's own data plane in front of the launcher: the real in-memory channel dispatcher and
 * broker filter (knative.dev/eventing v0.49.2), config/broker.yaml's Broker and Trigger, the real
 * launcher, control plane, dead-letter sink and Redis. Events enter the Broker's channel as the
 * broker ingress posts them; every hop after that is Knative's code, observed on the wire through
 * the cluster-names proxy (knative-names.ts).
 *
 * Where the retrying happens: the filter sends each event once and hands the subscriber's answer
 * back; the channel dispatcher retries with the Trigger's delivery (copied into its Subscription)
 * and dead-letters.
 */
import { expect } from 'chai';
import { BatchV1Api, type KubeConfig } from '@kubernetes/client-node';
import { jobName } from '../../function/kube/names.ts';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { startDeadLetterSink, type SinkUnderTest } from '../helpers/dead-letter-sink.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { asJobRobot, startLauncher, TEST_TYPE, type TestLauncher } from '../helpers/launcher.ts';
import { eventually, useNamespace } from '../helpers/kube.ts';
import { startRedis } from '../helpers/redis.ts';
import type { Exchange } from '../helpers/knative-names.ts';
import { routeBroker, type BrokerRoute, type Delivery } from '../helpers/knative-objects.ts';
import { privateControlPlaneOnly, startKnative, type KnativePlane } from '../helpers/knative-plane.ts';
import { featuresApplied } from '../helpers/knative-features.ts';

const JOBS = /^\/apis\/batch\/v1\/namespaces\/[^/]+\/jobs$/;
const SOURCE = '/knative-filter-test';
/** What the launcher answers 429 and 503 with when nothing names a time (RETRY_AFTER_SECONDS). */
const RETRY_AFTER_S = 4;
/** Short retries: 3 attempts, waiting 0.5 s then 1 s when Retry-After is not honoured. */
const RETRIES: Delivery = { retry: 2, backoffPolicy: 'exponential', backoffDelay: 'PT0.5S' };

const portOf = (url: string) => Number(new URL(url).port);
const gaps = (xs: Exchange[]) => xs.slice(1).map((x, i) => x.at - xs[i]!.at);
const statuses = (xs: Exchange[]) => xs.map((x) => x.status);

/** The headers of an event of this job-robot (bridge.yaml's ceOverrides add `jobrobot`). */
const event = (id: string, extra: Record<string, string> = {}) => ({
  'ce-specversion': '1.0',
  'ce-id': id,
  'ce-source': SOURCE,
  'ce-type': TEST_TYPE,
  'ce-jobrobot': 'job-robot',
  'content-type': 'application/json',
  ...extra,
});

describe('Knative broker filter and channel dispatcher deliver to the launcher (real Knative data plane)', function () {
  this.timeout(180_000);
  const ns = useNamespace('kn-filter');
  let robot: KubeConfig;
  let plane: KnativePlane;
  let sink: SinkUnderTest;
  let faults: FaultProxy;

  before(async function () {
    // A first run on a machine builds Knative's programs (test/cluster/build.ts).
    this.timeout(900_000);
    privateControlPlaneOnly(this);
    robot = await asJobRobot(ns.kc, ns.name);
    plane = await startKnative(ns.kc, { components: ['filter', 'dispatcher'] });
    sink = await startDeadLetterSink(process.env['JOB_ROBOT_TEST_REDIS_URL']!, { OIDC_AUTHENTICATION: 'disabled' });
    faults = await new FaultProxy(ns.kc).start();
  });
  after(async function () {
    await faults?.stop();
    await sink?.close();
    await plane?.stop();
  });
  beforeEach(async function () {
    await sink.client.del(sink.key);
  });

  /** Runs `fn` with a launcher (`env` over the defaults) behind the shipped Trigger with `delivery`. */
  async function through(
    env: Record<string, string>,
    delivery: Delivery,
    fn: (route: BrokerRoute, launcher: TestLauncher) => Promise<void>,
    kc: KubeConfig = robot,
    sinkUrl: string = sink.url,
  ): Promise<void> {
    const launcher = await startLauncher(kc, ns.name, { OIDC_AUTHENTICATION: 'disabled', RETRY_AFTER_SECONDS: String(RETRY_AFTER_S), ...env });
    let route: BrokerRoute | undefined;
    try {
      route = await routeBroker(plane, ns.name, { launcherPort: portOf(launcher.url), sinkPort: portOf(sinkUrl), delivery });
      await fn(route, launcher);
    } catch (err) {
      (err as Error).message += `\n${plane.tails()}`;
      throw err;
    } finally {
      await route?.remove();
      await launcher.close();
    }
  }

  it('202: delivered once, the Job exists, nothing is retried, dead-lettered or sent as a reply', async function () {
    await through({ JOB_NAME_PREFIX: 'kn-ok-' }, RETRIES, async (route) => {
      const answer = await route.publish(event('ok-1'), '{"n":1}');
      expect(answer.status, answer.body).to.equal(202);
      expect(statuses(route.toFilter('ok-1'))).to.deep.equal([202]);
      const [delivery] = route.toLauncher('ok-1');
      expect(delivery!.status).to.equal(202);
      expect(route.toLauncher('ok-1')).to.have.length(1);
      // Knative asks for a reply but not for JSON, so the launcher's 202 has no body: a body that is
      // not a CloudEvent would turn the delivery into the filter's 502.
      expect(delivery!.headers['prefer']).to.equal('reply');
      expect(String(delivery!.headers['accept'] ?? '')).to.not.contain('application/json');
      expect(delivery!.answerHeaders['content-length']).to.equal('0');
      expect(route.toSink('ok-1')).to.have.length(0);
      const name = jobName('kn-ok-', SOURCE, 'ok-1');
      const jobs = await ns.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns.name, fieldSelector: `metadata.name=${name}` });
      expect(jobs.items).to.have.length(1);
      // The launcher's empty 202 is no reply event: nothing goes back to the Broker's ingress.
      expect(plane.names.exchanges.filter((e) => e.host.startsWith('broker-ingress.'))).to.have.length(0);
      expect([...plane.names.unknown]).to.deep.equal([]);
    });
  });

  it("400: not retried; the dead-letter sink gets the event with Knative's error extensions and writes it to the Redis dead-letter stream", async function () {
    await through({ JOB_NAME_PREFIX: 'kn-bad-' }, RETRIES, async (route) => {
      const body = '{"not json';
      const answer = await route.publish(event('bad-1'), body);
      const tries = route.toLauncher('bad-1');
      expect(statuses(tries)).to.deep.equal([400]);
      // The filter hands the launcher's answer back, wrapped; the dispatcher unwraps it because the
      // failing destination is broker-filter.<system namespace>.svc.cluster.local.
      expect(statuses(route.toFilter('bad-1'))).to.deep.equal([400]);
      const [letter] = route.toSink('bad-1');
      expect(letter, 'a dead letter').to.not.equal(undefined);
      expect(letter!.status).to.equal(202);
      expect(letter!.headers['ce-knativeerrorcode']).to.equal('400');
      expect(letter!.headers['ce-knativeerrordest']).to.equal(route.launcherUrl);
      const data = Buffer.from(String(letter!.headers['ce-knativeerrordata']), 'base64').toString('utf8');
      expect(JSON.parse(data)).to.include({ error: 'invalid-json' });
      expect(letter!.headers['ce-jobrobot']).to.equal('job-robot');
      // The event as the channel received it from the Broker's ingress: its TTL extension stays.
      expect(letter!.headers['ce-knativebrokerttl']).to.equal('255');
      expect(answer.status, answer.body).to.equal(202);

      const [dl] = await readDeadLetters(sink.client, sink.key);
      expect(dl, 'a record in the dead-letter stream').to.not.equal(undefined);
      expect(dl!.id).to.equal('bad-1');
      expect(dl!.source).to.equal(SOURCE);
      expect(dl!.status).to.equal(400);
      expect(dl!.item.toString('utf8')).to.equal(body);
      expect(dl!.reason).to.match(new RegExp(`^the Broker gave up delivering to ${route.launcherUrl.replaceAll('.', '\\.')}: HTTP 400: \\{"error":"invalid-json"`));
      expect(JSON.parse(dl!.headers!)).to.include({ 'ce-knativeerrorcode': '400', 'ce-knativeerrordest': route.launcherUrl });
    });
  });

  it('413: an event over MAX_EVENT_BYTES is not retried; the whole event is dead-lettered', async function () {
    await through({ JOB_NAME_PREFIX: 'kn-big-', MAX_EVENT_BYTES: '1024' }, RETRIES, async (route) => {
      const body = JSON.stringify({ blob: 'x'.repeat(4096) });
      await route.publish(event('big-1'), body);
      expect(statuses(route.toLauncher('big-1'))).to.deep.equal([413]);
      const [letter] = route.toSink('big-1');
      expect(letter?.headers['ce-knativeerrorcode']).to.equal('413');
      const [dl] = await readDeadLetters(sink.client, sink.key);
      expect(dl!.status).to.equal(413);
      expect(dl!.item.toString('utf8')).to.equal(body);
      expect(dl!.reason).to.contain('"error":"too-large"');
    });
  });

  it("the dead-letter sink's 503 (its Redis away) is retried like the launcher's; when the dead letter fails too, the channel answers the Broker's ingress 500", async function () {
    const redis = await startRedis();
    const away = await startDeadLetterSink(redis.url, { OIDC_AUTHENTICATION: 'disabled' });
    // The sink's connection errors are expected here; the sink logs none (it answers 503 instead).
    away.client.on('error', () => undefined);
    try {
      await redis.stop();
      await eventually(async () => away.client.status !== 'ready', 10_000, "the sink's Redis connection to drop");
      await through({ JOB_NAME_PREFIX: 'kn-lost-' }, RETRIES, async (route) => {
        const answer = await route.publish(event('lost-1'), '{"not json');
        expect(statuses(route.toLauncher('lost-1'))).to.deep.equal([400]);
        const letters = route.toSink('lost-1');
        expect(statuses(letters)).to.deep.equal([503, 503, 503]);
        expect(letters[0]!.answerHeaders['retry-after']).to.equal('5');
        const [first, second] = gaps(letters);
        expect(first).to.be.within(450, 2_500);
        expect(second).to.be.within(950, 3_500);
        // Nothing holds the event any more: the channel says so to the Broker's ingress.
        expect(answer.status).to.equal(500);
      }, robot, away.url);
    } finally {
      await away.close();
    }
  });

  /** A launcher that answers `code` to event `id`: 429 at its active-Job cap, 503 when the API server fails the create. */
  async function refused(code: 429 | 503, delivery: Delivery, checks: (tries: Exchange[], route: BrokerRoute) => void): Promise<void> {
    const id = `refused-${code}-${Math.random().toString(16).slice(2, 8)}`;
    const check = (tries: Exchange[], route: BrokerRoute) => {
      if (process.env['KNATIVE_REPORT']) process.stderr.write(`[report] ${code} ${JSON.stringify(delivery)}: ${JSON.stringify(statuses(tries))} gaps ${JSON.stringify(gaps(tries))}\n`);
      checks(tries, route);
    };
    if (code === 429) {
      // Its own instance, so that only this scenario's Job counts against the cap.
      await through({ JOB_NAME_PREFIX: 'kn-cap-', MAX_ACTIVE_JOBS: '1', INSTANCE: id }, delivery, async (route) => {
        // The first event takes the only slot.
        await route.publish(event(`${id}-first`), '{}');
        expect(statuses(route.toLauncher(`${id}-first`))).to.deep.equal([202]);
        await route.publish(event(id), '{}');
        check(route.toLauncher(id), route);
      });
    } else {
      try {
        await through({ JOB_NAME_PREFIX: 'kn-down-', MAX_ACTIVE_JOBS: '0', KUBE_TIMEOUT_SECONDS: '2' }, delivery, async (route) => {
          // Once the launcher is ready (its start-up dry run passed), the API server fails every create.
          faults.rules = [{ method: 'POST', path: JOBS, fault: { status: 503 } }];
          await route.publish(event(id), '{}');
          check(route.toLauncher(id), route);
        }, faults.through(robot));
      } finally {
        faults.rules = [];
      }
    }
  }

  for (const flag of ['disabled', 'enabled'] as const) {
    it(`429 and 503 are retried with the Trigger's backoff and then dead-lettered; without retryAfterMax, Retry-After is ignored (delivery-retryafter ${flag})`, async function () {
      await plane.setFeatures({ 'delivery-retryafter': flag });
      await featuresApplied(plane, { 'delivery-retryafter': flag });
      for (const code of [429, 503] as const) {
        await refused(code, RETRIES, (tries, route) => {
          expect(statuses(tries), String(code)).to.deep.equal([code, code, code]);
          expect(tries[0]!.answerHeaders['retry-after']).to.equal(String(RETRY_AFTER_S));
          const [first, second] = gaps(tries);
          // Exponential from 0.5 s: 0.5 s, then 1 s; far below the 4 s the launcher asked for.
          expect(first, `${code}: first wait`).to.be.within(450, 2_500);
          expect(second, `${code}: second wait`).to.be.within(950, 3_500);
          expect(route.toSink(tries[0]!.headers['ce-id'] as string)[0]?.headers['ce-knativeerrorcode']).to.equal(String(code));
        });
      }
    });
  }

  it('with retryAfterMax, 429 waits for Retry-After (the dispatcher reads only retryAfterMax, not delivery-retryafter: here the flag is disabled)', async function () {
    await plane.setFeatures({ 'delivery-retryafter': 'disabled' });
    await featuresApplied(plane, { 'delivery-retryafter': 'disabled' });
    await refused(429, { ...RETRIES, retryAfterMax: 'PT10S' }, (tries) => {
      expect(statuses(tries)).to.deep.equal([429, 429, 429]);
      for (const gap of gaps(tries)) expect(gap).to.be.within(RETRY_AFTER_S * 1000 - 50, RETRY_AFTER_S * 1000 + 2_500);
    });
  });

  it('with retryAfterMax shorter than Retry-After, 503 waits retryAfterMax (delivery-retryafter enabled)', async function () {
    await plane.setFeatures({ 'delivery-retryafter': 'enabled' });
    await featuresApplied(plane, { 'delivery-retryafter': 'enabled' });
    await refused(503, { ...RETRIES, retryAfterMax: 'PT2S' }, (tries) => {
      expect(statuses(tries)).to.deep.equal([503, 503, 503]);
      for (const gap of gaps(tries)) expect(gap).to.be.within(1_950, RETRY_AFTER_S * 1000 - 100);
    });
  });

  it("the Trigger's jobrobot filter lets only this instance's events through to the launcher", async function () {
    await through({ JOB_NAME_PREFIX: 'kn-mine-' }, RETRIES, async (route) => {
      await route.publish(event('mine-1'), '{}');
      await route.publish(event('other-1', { 'ce-jobrobot': 'another-robot' }), '{}');
      const { 'ce-jobrobot': _drop, ...unmarked } = event('unmarked-1');
      await route.publish(unmarked, '{}');
      // Every event reached the filter; only this instance's went on.
      for (const id of ['mine-1', 'other-1', 'unmarked-1']) expect(statuses(route.toFilter(id)), id).to.have.length(1);
      expect(statuses(route.toFilter('other-1'))).to.deep.equal([200]);
      expect(statuses(route.toLauncher('mine-1'))).to.deep.equal([202]);
      expect(route.toLauncher('other-1')).to.have.length(0);
      expect(route.toLauncher('unmarked-1')).to.have.length(0);
      expect(route.toSink('other-1')).to.have.length(0);
    });
  });
});
