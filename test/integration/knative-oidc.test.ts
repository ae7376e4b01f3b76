/**
 * The trust chain end to end, with Knative's own code minting the tokens: `authentication-oidc`
 * enabled, the real channel dispatcher and broker filter (knative.dev/eventing v0.49.2) read the
 * API server's issuer, verify each other's tokens, and send job-robot the Trigger identity's token
 * for the audience config/broker.yaml names. The launcher and the dead-letter sink verify it with
 * their shipped defaults; the same requests without a token are refused.
 */
import { expect } from 'chai';
import { BatchV1Api, type KubeConfig } from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import { DEFAULT_SENDERS } from '../../function/auth/senders.ts';
import { jobName } from '../../function/kube/names.ts';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { startDeadLetterSink, type SinkUnderTest } from '../helpers/dead-letter-sink.ts';
import { eventually, useNamespace } from '../helpers/kube.ts';
import { asJobRobot, startLauncher, TEST_TYPE, type TestLauncher } from '../helpers/launcher.ts';
import { routeBroker, type BrokerRoute } from '../helpers/knative-objects.ts';
import { privateControlPlaneOnly, startKnative, type KnativePlane } from '../helpers/knative-plane.ts';

const SOURCE = '/knative-oidc-test';
const event = (id: string) => ({ 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': SOURCE, 'ce-type': TEST_TYPE, 'ce-jobrobot': 'job-robot', 'content-type': 'application/json' });
const bearerOf = (headers: Record<string, string | string[] | undefined>) => String(headers['authorization'] ?? '').replace(/^Bearer /, '');

/** A recorded request's headers without its token and without what belongs to its connection and body. */
function withoutToken(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const dropped = new Set(['authorization', 'content-length', 'host', 'connection', 'transfer-encoding', 'accept-encoding']);
  return Object.fromEntries(Object.entries(headers).filter(([k, v]) => !dropped.has(k) && typeof v === 'string')) as Record<string, string>;
}

describe('OIDC end to end: Knative\'s filter and dispatcher mint the tokens job-robot verifies', function () {
  this.timeout(180_000);
  const ns = useNamespace('kn-oidc');
  let robot: KubeConfig;
  let plane: KnativePlane;
  let launcher: TestLauncher;
  let sink: SinkUnderTest;
  let route: BrokerRoute;

  before(async function () {
    this.timeout(900_000);
    privateControlPlaneOnly(this);
    robot = await asJobRobot(ns.kc, ns.name);
    plane = await startKnative(ns.kc, { components: ['filter', 'dispatcher'], features: { 'authentication-oidc': 'enabled' } });
    // As shipped: on, each verifying the audience its destination names in config/broker.yaml.
    launcher = await startLauncher(robot, ns.name, { OIDC_AUTHENTICATION: 'enabled', OIDC_AUDIENCE: 'job-robot-launcher', MAX_EVENT_BYTES: '1024' });
    sink = await startDeadLetterSink(process.env['JOB_ROBOT_TEST_REDIS_URL']!, { OIDC_AUTHENTICATION: 'enabled', OIDC_AUDIENCE: 'job-robot-dead-letter', NAMESPACE: ns.name }, undefined, robot);
    route = await routeBroker(plane, ns.name, {
      launcherPort: Number(new URL(launcher.url).port),
      sinkPort: Number(new URL(sink.url).port),
      delivery: { retry: 1, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S' },
      oidc: true,
    });
  });
  after(async function () {
    if (this.currentTest?.state === 'failed' && plane) process.stderr.write(`${plane.tails(30)}\n`);
    await route?.remove();
    await launcher?.close();
    await sink?.close();
    await plane?.stop();
  });

  it('an event through the channel and the filter: the launcher gets the Trigger identity\'s token for its audience, and creates the Job', async function () {
    const id = 'oidc-ok';
    const published = await route.publish(event(id), '{"n":1}');
    expect(published.status, published.body).to.equal(202);
    const name = jobName('job-robot-', SOURCE, id);
    await eventually(async () => (await robot.makeApiClient(BatchV1Api).readNamespacedJob({ name, namespace: ns.name }).catch(() => undefined)) !== undefined, 30_000, `Job ${name}`);
    const [delivery] = route.toLauncher(id);
    expect(delivery?.status).to.equal(202);
    const claims = decodeJwt(bearerOf(delivery!.headers));
    expect(claims.sub).to.equal(`system:serviceaccount:${ns.name}:${DEFAULT_SENDERS.launcher[0]}`);
    expect(claims.aud).to.deep.equal(['job-robot-launcher']);
  });

  it('the same event replayed to the launcher without the token: 401, and no second delivery is made', async function () {
    const [delivery] = route.toLauncher('oidc-ok');
    const res = await fetch(`${launcher.url}/`, { method: 'POST', headers: { ...withoutToken(delivery!.headers), 'ce-id': 'oidc-replay' }, body: '{"n":1}' });
    expect(res.status).to.equal(401);
    const name = jobName('job-robot-', SOURCE, 'oidc-replay');
    expect(await robot.makeApiClient(BatchV1Api).readNamespacedJob({ name, namespace: ns.name }).catch(() => undefined)).to.equal(undefined);
  });

  it('an event the launcher refuses (413) is dead-lettered by the filter with the Trigger identity\'s token; the sink writes it, and refuses the same request without it', async function () {
    const id = 'oidc-too-big';
    const published = await route.publish(event(id), JSON.stringify({ big: 'x'.repeat(4096) }));
    expect(published.status, published.body).to.equal(202);
    await eventually(async () => (await readDeadLetters(sink.client, sink.key)).some((l) => l.id === id), 30_000, `dead letter ${id}`);
    const [letter] = route.toSink(id);
    expect(letter?.status).to.equal(202);
    const claims = decodeJwt(bearerOf(letter!.headers));
    expect(claims.sub).to.equal(`system:serviceaccount:${ns.name}:${DEFAULT_SENDERS.deadLetter[0]}`);
    expect(claims.aud).to.deep.equal(['job-robot-dead-letter']);

    const before = await sink.client.xlen(sink.key);
    const res = await fetch(sink.url, { method: 'POST', headers: withoutToken(letter!.headers), body: '{}' });
    expect(res.status).to.equal(401);
    expect(await sink.client.xlen(sink.key)).to.equal(before);
  });
});
