/**
 * Only the Knative senders job-robot trusts get through: the launcher, the reaper and the
 * dead-letter sink verify OIDC tokens against the real API server's ServiceAccount issuer. Every
 * token here is minted through the TokenRequest API of a real ServiceAccount, or forged from one.
 * Each refusal must leave nothing behind: no Job, no reaper run, no dead letter.
 */
import { expect } from 'chai';
import { BatchV1Api, type KubeConfig } from '@kubernetes/client-node';
import { decodeProtectedHeader } from 'jose';
import { Registry } from 'prom-client';
import { SenderAuth } from '../../function/auth/gate.ts';
import { DEFAULT_SENDERS } from '../../function/auth/senders.ts';
import { Health } from '../../function/http/health.ts';
import { listen, type RunningServer } from '../../function/http/server.ts';
import { createLogger } from '../../function/log.ts';
import { PING_TYPE, reaperApp } from '../../function/reaper/app.ts';
import { loadReaperConfig } from '../../function/reaper/config.ts';
import { ReaperMetrics } from '../../function/reaper/metrics.ts';
import { Reaper } from '../../function/reaper/reap.ts';
import { Runs } from '../../function/reaper/runs.ts';
import { startDeadLetterSink, type SinkUnderTest } from '../helpers/dead-letter-sink.ts';
import { useNamespace } from '../helpers/kube.ts';
import { asJobRobot, postBinary, startLauncher, type TestLauncher } from '../helpers/launcher.ts';
import { usePrivateRedis } from '../helpers/redis.ts';
import { clusterKey, foreignSigned, hmacWithPublicKey, mintToken, unsigned, withClaims } from '../helpers/tokens.ts';
import { restOf } from '../../function/kube/client.ts';
import { restJobs } from '../../function/kube/jobs-api.ts';
import type { KubeRest } from '../../function/kube/rest.ts';

const AUDIENCE = 'job-robot-launcher';
const TRIGGER_SA = DEFAULT_SENDERS.launcher[0];
const PING_SA = DEFAULT_SENDERS.reaper[0];
const AUTH_ON = { OIDC_AUTHENTICATION: 'enabled', OIDC_AUDIENCE: AUDIENCE };

describe('sender authentication: Knative OIDC tokens from the real API server', function () {
  this.timeout(120_000);
  const ns = useNamespace('auth');
  const other = useNamespace('auth-other');
  let robot: KubeConfig;
  let launcher: TestLauncher;
  let source = '';
  let n = 0;

  const token = (sa: string, audience = AUDIENCE, namespace = ns.name) => mintToken(ns.kc, namespace, sa, audience);
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const post = (id: string, headers: Record<string, string> = {}) => postBinary(launcher.url, { id, source, data: '{"n":1}', headers });
  const jobCount = async () => (await robot.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns.name })).items.length;
  /** The value of job_robot_sender_refusals_total{status, reason} on a function's /metrics (0 when absent). */
  const refusals = async (url: string, status: number, reason: string) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('job_robot_sender_refusals_total{') && l.includes(`status="${status}"`) && l.includes(`reason="${reason}"`));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };

  before(async function () {
    robot = await asJobRobot(ns.kc, ns.name);
    launcher = await startLauncher(robot, ns.name, { ...AUTH_ON, MAX_ACTIVE_JOBS: '0' });
  });
  after(async function () {
    await launcher?.close();
  });
  beforeEach(function () {
    source = `/auth/${++n}`;
  });

  describe('launcher', function () {
    it('the Trigger\'s identity with the launcher\'s audience: 202, and the Job exists', async function () {
      const res = await post('ok', bearer(await token(TRIGGER_SA)));
      expect(res.status, await res.text()).to.equal(202);
      expect(res.headers.get('x-job-status')).to.equal('created');
      expect(await jobCount()).to.equal(1);
    });

    const refused: [string, () => Promise<Record<string, string>>, number, string][] = [
      ['no token', async () => ({}), 401, 'no-token'],
      ['not a Bearer header', async () => ({ authorization: 'Basic dXNlcjpwYXNz' }), 401, 'malformed-token'],
      ['a token for another audience', async () => bearer(await token(TRIGGER_SA, 'job-robot-reaper')), 401, 'wrong-audience'],
      ['a ServiceAccount not on the allow-list', async () => bearer(await token('stranger')), 403, 'sender-not-allowed'],
      ['the Trigger\'s ServiceAccount name in another namespace', async () => bearer(await token(TRIGGER_SA, AUDIENCE, other.name)), 403, 'sender-not-allowed'],
      ['a stranger\'s token with its subject rewritten to the Trigger\'s (signature tampered)', async () => bearer(withClaims(await token('stranger'), { sub: `system:serviceaccount:${ns.name}:${TRIGGER_SA}` })), 401, 'bad-signature'],
      ['the Trigger\'s claims with alg: none', async () => bearer(unsigned(await token(TRIGGER_SA))), 401, 'algorithm-refused'],
      ['the Trigger\'s claims HS256-signed with the cluster\'s public key', async () => bearer(await hmacWithPublicKey(await token(TRIGGER_SA), await clusterKey(ns.kc))), 401, 'algorithm-refused'],
      ['the Trigger\'s claims signed by a foreign key under the cluster key\'s kid', async () => {
        const real = await token(TRIGGER_SA);
        return bearer(await foreignSigned(real, decodeProtectedHeader(real).kid!));
      }, 401, 'bad-signature'],
      ['a foreign key under a kid the cluster never published', async () => bearer(await foreignSigned(await token(TRIGGER_SA), 'made-up-kid')), 401, 'unknown-key'],
    ];
    for (const [what, headers, status, reason] of refused) {
      it(`${what}: ${status} ${reason}, no Job`, async function () {
        const before = await refusals(launcher.url, status, reason);
        const res = await post(`refused-${n}`, await headers());
        const body = (await res.json()) as { error: string; message: string };
        expect(res.status, body.message).to.equal(status);
        expect(body.error).to.equal(reason);
        if (status === 401) expect(res.headers.get('www-authenticate')).to.match(/^Bearer/);
        expect(await jobCount()).to.equal(0);
        expect(await refusals(launcher.url, status, reason)).to.equal(before + 1);
      });
    }

    it('name squatting: a caller without a token cannot take the real item\'s Job name; the real delivery creates it', async function () {
      const squat = await post('item-7', {});
      expect(squat.status).to.equal(401);
      const real = await post('item-7', bearer(await token(TRIGGER_SA)));
      expect(real.status).to.equal(202);
      expect(real.headers.get('x-job-status')).to.equal('created');
      expect(await jobCount()).to.equal(1);
    });

    it('GET /jobs/<name>: a token from a ServiceAccount of the namespace reads it; no token is 401', async function () {
      const created = await post('readable', bearer(await token(TRIGGER_SA)));
      const location = created.headers.get('location')!;
      expect((await fetch(`${launcher.url}${location}`)).status).to.equal(401);
      const read = await fetch(`${launcher.url}${location}`, { headers: bearer(await token('a-reader')) });
      expect(read.status).to.equal(200);
      const outsider = await fetch(`${launcher.url}${location}`, { headers: bearer(await token('a-reader', AUDIENCE, other.name)) });
      expect(outsider.status).to.equal(403);
    });

    afterEach(async function () {
      await ns.kc.makeApiClient(BatchV1Api).deleteCollectionNamespacedJob({ namespace: ns.name, propagationPolicy: 'Background' });
    });
  });

  const clocks: [string, number, string][] = [
    ['an hour past the token\'s expiry', 600_000 + 3_600_000, 'expired'],
    ['an hour before the token was issued', -3_600_000, 'not-yet-valid'],
  ];
  for (const [when, offsetMs, reason] of clocks) {
    describe(`launcher with its clock ${when}`, function () {
      let skewed: TestLauncher;
      before(async function () {
        skewed = await startLauncher(robot, ns.name, { ...AUTH_ON, MAX_ACTIVE_JOBS: '0', OIDC_CLOCK_SKEW_SECONDS: '30' }, { authClock: () => new Date(Date.now() + offsetMs) });
      });
      after(async function () {
        await skewed?.close();
      });

      it(`the Trigger's fresh token: 401 ${reason}, no Job`, async function () {
        const res = await postBinary(skewed.url, { id: `skewed-${reason}`, source, data: '{}', headers: bearer(await token(TRIGGER_SA)) });
        expect(res.status).to.equal(401);
        expect(((await res.json()) as { error: string }).error).to.equal(reason);
        expect(await jobCount()).to.equal(0);
      });
    });
  }

  describe('reaper', function () {
    let server: RunningServer;
    let url = '';
    // As the function: one pool for the reaper's calls and the senders' token checks.
    let rest: KubeRest | undefined;
    before(async function () {
      const config = loadReaperConfig({ NAMESPACE: ns.name, OIDC_AUDIENCE: 'job-robot-reaper' });
      const registry = new Registry();
      const log = createLogger('silent');
      rest = restOf(robot, 10_000);
      const reaper = new Reaper(restJobs(rest), { namespace: ns.name, policy: config.policy, concurrency: 1, pageSize: 10 });
      const runs = new Runs({ reaper, metrics: new ReaperMetrics(registry), log, onForbidden: () => undefined });
      const auth = SenderAuth.from(config.auth, { rest, namespace: ns.name, log, registry });
      server = await listen(reaperApp({ senders: auth.senders(), runs, health: new Health(), registry, log }), 0, '127.0.0.1');
      url = `http://127.0.0.1:${server.port}`;
    });
    after(async function () {
      await server?.close(100);
      rest?.close();
    });
    const ping = (headers: Record<string, string>) =>
      fetch(`${url}/`, { method: 'POST', headers: { 'ce-specversion': '1.0', 'ce-id': `ping-${n}`, 'ce-source': '/ping', 'ce-type': PING_TYPE, ...headers }, body: '' });

    it('the PingSource\'s identity runs it: 200 with the summary', async function () {
      const res = await ping(bearer(await token(PING_SA, 'job-robot-reaper')));
      expect(res.status).to.equal(200);
      expect(await res.json()).to.have.property('deleted');
    });
    it('no token: 401; the Trigger\'s identity: 403; neither runs it', async function () {
      expect((await ping({})).status).to.equal(401);
      expect((await ping(bearer(await token(TRIGGER_SA, 'job-robot-reaper')))).status).to.equal(403);
      expect(await refusals(url, 401, 'no-token')).to.equal(1);
      expect(await refusals(url, 403, 'sender-not-allowed')).to.equal(1);
      expect((await (await fetch(`${url}/metrics`)).text())).to.match(/job_robot_reaper_runs_total\{[^}]*\} 1\b/);
    });
  });

  describe('dead-letter sink', function () {
    const redis = usePrivateRedis();
    let sink: SinkUnderTest;
    before(async function () {
      sink = await startDeadLetterSink(redis.server.url, { ...AUTH_ON, OIDC_AUDIENCE: 'job-robot-dead-letter', NAMESPACE: ns.name }, undefined, robot);
    });
    after(async function () {
      await sink?.close();
    });
    const letter = (headers: Record<string, string>) =>
      fetch(sink.url, { method: 'POST', headers: { 'ce-specversion': '1.0', 'ce-id': `dl-${n}`, 'ce-source': source, 'ce-type': 'dev.job-robot.queue.item', 'content-type': 'application/json', ...headers }, body: '{"x":1}' });

    it('a stranger or no token: refused, the stream stays empty; the Trigger\'s identity: written', async function () {
      expect((await letter({})).status).to.equal(401);
      expect((await letter(bearer(await token('stranger', 'job-robot-dead-letter')))).status).to.equal(403);
      expect(await sink.client.xlen(sink.key)).to.equal(0);
      expect((await letter(bearer(await token(TRIGGER_SA, 'job-robot-dead-letter')))).status).to.equal(202);
      expect(await sink.client.xlen(sink.key)).to.equal(1);
    });
  });
});
