/**
 * The bridge authenticates to its sink with the OIDC token Knative's SinkBinding mounts: the bridge
 * runs as a child process against a real redis-server and an HTTP sink in this process, and the
 * token file is a directory laid out and rotated the way the kubelet does it (helpers/projected-volume.ts).
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { queueKeys } from '../../function/queue/keys.ts';
import { BridgeProcess, waitUntil } from '../helpers/bridge.ts';
import { useBridgeSuite } from '../helpers/bridge-suite.ts';
import { ProjectedVolume } from '../helpers/projected-volume.ts';

/** A JWT-shaped token (unsigned: the bridge only carries it). */
function jwt(sub: string, exp = Math.floor(Date.now() / 1000) + 3600): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', kid: 'test' })}.${part({ sub, exp, aud: 'broker' })}.${Buffer.from(sub).toString('base64url')}`;
}

const REFUSED = "the sink refused the bridge's identity; items stay in Redis and are retried until it accepts it";

describe('bridge sink token: the OIDC token goes to the sink as a Bearer token (child process, real Redis)', function () {
  this.timeout(120_000);
  const t = useBridgeSuite('sink-token');
  let volume: ProjectedVolume;

  beforeEach(async function () {
    volume = await ProjectedVolume.create();
  });
  afterEach(async function () {
    await volume.remove();
  });

  const env = (over: Record<string, string> = {}) => ({
    REDIS_URL: t.server.url,
    K_SINK: t.sink.url,
    QUEUE_KEY: t.queue,
    CONSUMER: 'sink-token',
    CONCURRENCY: '4',
    BACKOFF_MIN_MS: '10',
    BACKOFF_MAX_MS: '200',
    OIDC_TOKEN_FILE: volume.path(),
    OIDC_TOKEN_CHECK_MS: '100',
    ...over,
  });

  const push = (prefix: string, count: number) => t.redis.lpush(t.queue, ...Array.from({ length: count }, (_, i) => `${prefix}-${i}`));
  const acceptedWith = (prefix: string) => t.sink.accepted().filter((d) => d.body.toString().startsWith(`${prefix}-`));
  const deadLetters = () => readDeadLetters(t.redis, queueKeys(t.queue).deadLetter);

  it('every delivery carries Authorization: Bearer <the mounted token>, and the start log says a token is sent', async function () {
    const token = jwt('system:serviceaccount:default:job-robot-bridge-oidc-sources.knative.dev-containersource');
    await volume.write({ token: `${token}\n` });
    const bridge = new BridgeProcess(env());
    await push('item', 20);
    await t.sink.waitFor(() => acceptedWith('item').length === 20, 30_000, 'all 20 items');
    expect(t.sink.deliveries.map((d) => d.headers.authorization)).to.deep.equal(Array(20).fill(`Bearer ${token}`));
    expect(bridge.logged('sending the OIDC token from OIDC_TOKEN_FILE to the sink')).to.have.length(1);
    expect(JSON.stringify(bridge.logs)).to.not.include(token);
    expect((await bridge.terminate()).code).to.equal(0);
  });

  it('a token rotated the way the kubelet does (new ..data, symlink swapped) is sent from then on, without a restart', async function () {
    const first = jwt('first');
    const second = jwt('second');
    await volume.write({ token: first });
    const bridge = new BridgeProcess(env());
    await push('before', 5);
    await t.sink.waitFor(() => acceptedWith('before').length === 5, 30_000, 'the items before the rotation');
    const pid = bridge.child.pid;
    await volume.write({ token: second });
    await waitUntil(() => bridge.logged('OIDC token file changed; sending the new token').length === 1, 10_000, 'the bridge to see the new token');
    await push('after', 5);
    await t.sink.waitFor(() => acceptedWith('after').length === 5, 30_000, 'the items after the rotation');
    expect(acceptedWith('before').map((d) => d.headers.authorization)).to.deep.equal(Array(5).fill(`Bearer ${first}`));
    expect(acceptedWith('after').map((d) => d.headers.authorization)).to.deep.equal(Array(5).fill(`Bearer ${second}`));
    expect(bridge.alive).to.equal(true);
    expect(bridge.child.pid).to.equal(pid);
    expect(await bridge.metric('job_robot_bridge_token_reloads_total', { result: 'rotated' })).to.equal(1);
    expect(await bridge.metric('job_robot_bridge_token_reloads_total', { result: 'failed' })).to.equal(0);
    await bridge.terminate();
  });

  it('no token file at the default path: no Authorization header, and the start log says none is sent', async function () {
    expect(existsSync('/oidc/token'), 'this test needs a machine without /oidc/token').to.equal(false);
    const { OIDC_TOKEN_FILE: _unset, ...withoutFile } = env();
    const bridge = new BridgeProcess(withoutFile);
    await push('plain', 5);
    await t.sink.waitFor(() => acceptedWith('plain').length === 5, 30_000, 'the items');
    expect(t.sink.deliveries.map((d) => d.headers.authorization)).to.deep.equal(Array(5).fill(undefined));
    const said = bridge.logged('no OIDC token file: sending events to the sink without a token (set OIDC_TOKEN_FILE to require one)');
    expect(said).to.have.length(1);
    expect(said[0]).to.include({ level: 'info', file: '/oidc/token' });
    await bridge.terminate();
  });

  it('OIDC_TOKEN_FILE set to a file that is not there: the bridge does not start, naming the variable and the path', async function () {
    const bridge = new BridgeProcess(env({ OIDC_TOKEN_FILE: volume.path('missing') }));
    expect((await bridge.exited).code).to.equal(78);
    expect(bridge.stderr.join('')).to.include(`OIDC_TOKEN_FILE: the token file ${volume.path('missing')} does not exist`);
    expect(t.sink.deliveries).to.deep.equal([]);
  });

  it('a token file over 64 KiB: the bridge does not start, and says the size and the limit', async function () {
    await volume.write({ token: 'a'.repeat(100 * 1024) });
    const bridge = new BridgeProcess(env());
    expect((await bridge.exited).code).to.equal(78);
    expect(bridge.stderr.join('')).to.include(`OIDC_TOKEN_FILE: the token file ${volume.path()} is 102400 bytes, over the limit of 65536`);
    expect(t.sink.deliveries).to.deep.equal([]);
  });

  it('a rotated file over 64 KiB is refused with one warning; the last good token goes on being sent', async function () {
    const good = jwt('good');
    await volume.write({ token: good });
    const bridge = new BridgeProcess(env());
    await bridge.port(); // the good token is read before the bridge listens
    await volume.write({ token: 'b'.repeat(70 * 1024) });
    await waitUntil(() => bridge.logged('cannot re-read the OIDC token file; keeping the last good token').length === 1, 10_000, 'the warning');
    await push('kept', 5);
    await t.sink.waitFor(() => acceptedWith('kept').length === 5, 30_000, 'the items');
    expect(acceptedWith('kept').map((d) => d.headers.authorization)).to.deep.equal(Array(5).fill(`Bearer ${good}`));
    const [warning] = bridge.logged('cannot re-read the OIDC token file; keeping the last good token');
    expect(warning).to.include({ level: 'warn', problem: 'is 71680 bytes, over the limit of 65536; a token is a few KiB' });
    // Checked every 100 ms since, and still one warning for the one bad version.
    expect(bridge.logged('cannot re-read the OIDC token file; keeping the last good token')).to.have.length(1);
    expect(await bridge.metric('job_robot_bridge_token_reloads_total', { result: 'failed' })).to.equal(1);
    await bridge.terminate();
  });

  it('a sink answering 401: the items are retried, not dead-lettered (MAX_ATTEMPTS=1), and delivered once the renewed token is accepted', async function () {
    const stale = jwt('bridge', Math.floor(Date.now() / 1000) - 60);
    const renewed = jwt('bridge');
    await volume.write({ token: stale });
    t.sink.respond = (req) => (req.headers.authorization === `Bearer ${renewed}` ? 202 : { status: 401, body: 'token has expired' });
    // The timer alone would not see the renewal for 10 minutes: the 401 makes the bridge look at once.
    const bridge = new BridgeProcess(env({ MAX_ATTEMPTS: '1', OIDC_TOKEN_CHECK_MS: '600000' }));
    await push('refused', 10);
    await waitUntil(async () => (await bridge.metric('job_robot_bridge_sink_identity_refusals_total', { status: '401' })) >= 30, 30_000, 'refusals');
    expect(await deadLetters()).to.deep.equal([]);
    expect(await bridge.metric('job_robot_bridge_dead_lettered_total')).to.equal(0);
    expect(await bridge.metric('job_robot_bridge_in_flight')).to.equal(10);
    expect(await t.redis.exists(queueKeys(t.queue).attempts)).to.equal(0);
    const refusals = bridge.logged(REFUSED);
    expect(refusals).to.have.length(1);
    expect(refusals[0]).to.include({ level: 'warn', status: 401, sendsToken: true });
    expect(refusals[0]!['hint']).to.match(/has expired and has not been renewed/);

    await volume.write({ token: renewed });
    await t.sink.waitFor(() => acceptedWith('refused').length === 10, 30_000, 'every item with the renewed token');
    expect(t.sink.acceptedBodies()).to.deep.equal(new Set(Array.from({ length: 10 }, (_, i) => `refused-${i}`)));
    expect(acceptedWith('refused').every((d) => d.headers.authorization === `Bearer ${renewed}`)).to.equal(true);
    expect(await deadLetters()).to.deep.equal([]);
    expect(await bridge.metric('job_robot_bridge_retried_total', { reason: 'refused-identity' })).to.be.at.least(30);
    expect(bridge.logged(REFUSED)).to.have.length(1);
    expect(bridge.logged("the sink accepts the bridge's identity again")).to.have.length(1);
    expect((await bridge.terminate()).code).to.equal(0);
    expect(await t.redis.llen(t.queue)).to.equal(0);
  });

  it('a sink answering 403 (the sender not allowed yet): nothing dead-lettered, everything delivered once it is allowed', async function () {
    await volume.write({ token: jwt('bridge') });
    let allowed = false;
    t.sink.respond = () => (allowed ? 202 : { status: 403, body: 'not allowed by any EventPolicy' });
    const bridge = new BridgeProcess(env({ MAX_ATTEMPTS: '1' }));
    await push('forbidden', 10);
    await waitUntil(async () => (await bridge.metric('job_robot_bridge_sink_identity_refusals_total', { status: '403' })) >= 20, 30_000, 'refusals');
    expect(await deadLetters()).to.deep.equal([]);
    const [refusal] = bridge.logged(REFUSED);
    expect(refusal).to.include({ status: 403 });
    expect(refusal!['hint']).to.match(/EventPolicy/);
    allowed = true;
    await t.sink.waitFor(() => acceptedWith('forbidden').length === 10, 30_000, 'every item once allowed');
    expect(await deadLetters()).to.deep.equal([]);
    await bridge.terminate();
  });
});
