/**
 * The results function's answers at its edges, with a real Redis: requests it must refuse (and
 * write nothing for), a Redis that is away, refusing or slow (503 with Retry-After, never a 2xx
 * for a record not written), the sender gate with real tokens, and `job-robot results` as a
 * process.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { DEFAULT_SENDERS } from '../../function/auth/senders.ts';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION, MANAGED_BY_LABEL } from '../../function/kube/labels.ts';
import { connect } from '../../function/queue/connection.ts';
import { eventually, useNamespace } from '../helpers/kube.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { metricValue, postApiServerEvent, spawnResults, startResults, type RawObject, type ResultsUnderTest } from '../helpers/results.ts';
import { mintToken } from '../helpers/tokens.ts';

let n = 0;

/** A Job as the API server serves it, made by job-robot for item `id`, finished as `state` (or running). */
function job(id: string, state: 'running' | 'Complete' | 'Failed' = 'Complete', extra: Record<string, unknown> = {}): RawObject {
  const t = '2026-11-28T12:01:00Z';
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: `job-robot-${id}`,
      namespace: 'jobs',
      uid: `uid-${id}-${++n}`,
      creationTimestamp: '2026-11-28T12:00:00Z',
      labels: { [MANAGED_BY_LABEL]: 'job-robot' },
      annotations: { [EVENT_ID_ANNOTATION]: id, [EVENT_SOURCE_ANNOTATION]: '/queue/http' },
    },
    spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox' }], restartPolicy: 'Never' } } },
    status: state === 'running' ? { active: 1 } : { conditions: [{ type: state, status: 'True', reason: state === 'Complete' ? 'CompletionsReached' : 'BackoffLimitExceeded', lastTransitionTime: t }] },
    ...extra,
  };
}

describe('results function: refusals, Redis trouble, sender authentication, the process', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let r: ResultsUnderTest;

  before(async function () {
    redis = await startRedis();
    r = await startResults(redis.url, { MAX_REQUEST_BYTES: String(64 * 1024) });
  });
  after(async function () {
    await r?.close();
    await redis?.stop();
  });

  describe('requests it refuses, writing nothing', function () {
    const refuses = async (res: Response, status: number, error: string) => {
      expect(res.status).to.equal(status);
      const body = (await res.json()) as { error: string; message: string };
      expect(body.error, body.message).to.equal(error);
      expect(await r.client.exists(r.config.keys.results)).to.equal(0);
      return body.message;
    };

    it('a body over MAX_REQUEST_BYTES: 413 (the Job is not held)', async function () {
      const big = job('big-1', 'Complete', { padding: 'x'.repeat(70 * 1024) });
      await refuses(await postApiServerEvent(r.url, 'update', big), 413, 'too-large');
      expect(await r.record('big-1')).to.equal(undefined);
    });

    it('not a CloudEvent (plain JSON, no ce- headers): 415', async function () {
      const res = await fetch(r.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(job('plain-1')) });
      await refuses(res, 415, 'unsupported-media-type');
    });

    it('a batch: 415, naming binary and structured mode', async function () {
      const res = await fetch(r.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body: '[]' });
      expect(await refuses(res, 415, 'unsupported-media-type')).to.contain('one event a request');
    });

    it('a queue item sent here by mistake (another type): 400, naming the type', async function () {
      const res = await fetch(r.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'x', 'ce-source': '/q', 'ce-type': 'dev.job-robot.queue.item' },
        body: '{"report":"monthly"}',
      });
      expect(await refuses(res, 400, 'unexpected-type')).to.contain('not dev.job-robot.queue.item');
    });

    it('a malformed Job (conditions not a list): 400, naming the field; counted as a rejection', async function () {
      const bad = job('bad-1', 'running', { status: { conditions: 'Complete' } });
      expect(await refuses(await postApiServerEvent(r.url, 'update', bad), 400, 'invalid-job')).to.contain('status.conditions');
      expect(await metricValue(r.registry, 'job_robot_results_rejections_total', { reason: 'invalid-job' })).to.equal(1);
    });

    it('JSON that does not parse: 400', async function () {
      const res = await fetch(r.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'x', 'ce-source': '/a', 'ce-type': 'dev.knative.apiserver.resource.update' },
        body: '{"apiVersion":"batch/v1",',
      });
      await refuses(res, 400, 'invalid-json');
    });

    it('another path: 404', async function () {
      expect((await fetch(`${r.url}jobs`, { method: 'POST' })).status).to.equal(404);
    });
  });

  describe('Redis away, refusing or slow: 503 with Retry-After, and nothing acknowledged that was not written', function () {
    it('away (the connection is down): 503 redis-unavailable, Retry-After 5', async function () {
      const away = connect({ kind: 'standalone', host: '127.0.0.1', port: 1, db: 0, tls: false }, 'test-away', false, { lazyConnect: true, retryStrategy: () => null });
      away.on('error', () => undefined);
      const down = await startResults(redis.url, {}, { client: away });
      try {
        const res = await postApiServerEvent(down.url, 'update', job('away-1'));
        expect(res.status).to.equal(503);
        expect(res.headers.get('retry-after')).to.equal('5');
        expect(((await res.json()) as { error: string }).error).to.equal('redis-unavailable');
      } finally {
        await down.close();
        away.disconnect();
      }
    });

    it('the server stops while the function runs: 503 redis-unavailable, Retry-After 5', async function () {
      const own = await startRedis();
      const fn = await startResults(own.url);
      try {
        await own.stop();
        await eventually(async () => fn.client.status !== 'ready', 10_000, 'the client to notice Redis is gone');
        const res = await postApiServerEvent(fn.url, 'update', job('gone-1'));
        expect(res.status).to.equal(503);
        expect(res.headers.get('retry-after')).to.equal('5');
        expect(((await res.json()) as { error: string }).error).to.equal('redis-unavailable');
      } finally {
        await fn.close();
      }
    });

    it('refusing writes (out of memory): 503 redis-error and no record; the redelivery after is recorded and announced', async function () {
      const admin = new Redis(redis.url);
      try {
        await admin.config('SET', 'maxmemory', '1');
        const event = job('oom-1');
        const res = await postApiServerEvent(r.url, 'update', event);
        expect(res.status).to.equal(503);
        const body = (await res.json()) as { error: string; message: string };
        expect(body.error).to.equal('redis-error');
        expect(body.message).to.match(/OOM/);
        await admin.config('SET', 'maxmemory', '0');
        expect(await r.record('oom-1')).to.equal(undefined);
        expect((await postApiServerEvent(r.url, 'update', event)).status).to.equal(200);
        expect((await r.record('oom-1'))!.state).to.equal('succeeded');
      } finally {
        await admin.config('SET', 'maxmemory', '0');
        admin.disconnect();
      }
    });

    it('too slow (writes paused longer than the function waits): 503 redis-timeout', async function () {
      const slow = await startResults(redis.url, {}, { redisWaitMs: 300 });
      const admin = new Redis(redis.url);
      try {
        await admin.call('CLIENT', 'PAUSE', '2000', 'WRITE');
        const res = await postApiServerEvent(slow.url, 'update', job('slow-1'));
        expect(res.status).to.equal(503);
        expect(((await res.json()) as { error: string }).error).to.equal('redis-timeout');
      } finally {
        await admin.call('CLIENT', 'UNPAUSE');
        admin.disconnect();
        await slow.close();
      }
    });
  });

  describe('sender authentication (OIDC on): only the results Trigger\'s identity gets through', function () {
    const ns = useNamespace('results-auth');
    let guarded: ResultsUnderTest;
    const AUDIENCE = 'job-robot-results';

    before(async function () {
      guarded = await startResults(redis.url, { OIDC_AUTHENTICATION: 'enabled', OIDC_AUDIENCE: AUDIENCE, NAMESPACE: ns.name }, { kc: ns.kc });
    });
    after(async function () {
      await guarded?.close();
    });

    const post = (id: string, token?: string) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': `e-${id}`, 'ce-source': '/apiserver', 'ce-type': 'dev.knative.apiserver.resource.update' };
      if (token) headers['authorization'] = `Bearer ${token}`;
      return fetch(guarded.url, { method: 'POST', headers, body: JSON.stringify(job(id)) });
    };

    it('the Trigger job-robot-results\'s token for the audience: recorded and announced', async function () {
      const res = await post('auth-ok', await mintToken(ns.kc, ns.name, DEFAULT_SENDERS.results[0], AUDIENCE));
      expect(res.status, await res.clone().text()).to.equal(200);
      expect((await guarded.record('auth-ok'))!.state).to.equal('succeeded');
    });

    it('no token: 401; the launcher Trigger\'s token: 403; a token for the launcher\'s audience: 401; nothing written', async function () {
      expect((await post('auth-none')).status).to.equal(401);
      expect((await post('auth-launcher', await mintToken(ns.kc, ns.name, DEFAULT_SENDERS.launcher[0], AUDIENCE))).status).to.equal(403);
      expect((await post('auth-aud', await mintToken(ns.kc, ns.name, DEFAULT_SENDERS.results[0], 'job-robot-launcher'))).status).to.equal(401);
      for (const id of ['auth-none', 'auth-launcher', 'auth-aud']) expect(await guarded.record(id), id).to.equal(undefined);
    });
  });

  describe('job-robot results, the process', function () {
    it('a bad variable stops the start with exit 78, naming it', async function () {
      const child = await spawnResults({ REDIS_URL: redis.url, MAX_REQUEST_BYTES: '12' }, { waitListening: false });
      expect(await child.exited).to.equal(78);
      expect(child.output()).to.match(/job-robot results: invalid configuration: MAX_REQUEST_BYTES/);
    });

    it('starts, is ready once Redis answers, records and announces, serves its metrics, stops on SIGTERM', async function () {
      const queue = `jr-proc-${++n}:queue`;
      const child = await spawnResults({ REDIS_URL: redis.url, QUEUE_KEY: queue });
      try {
        await eventually(async () => (await fetch(`${child.url}health/readiness`)).ok, 10_000, 'readiness');
        const res = await postApiServerEvent(child.url, 'update', job('proc-1'));
        expect(res.status).to.equal(200);
        expect(res.headers.get('ce-type')).to.equal('dev.job-robot.job.succeeded');
        expect(await r.client.hget(`{${queue}}:result:proc-1`, 'state')).to.equal('succeeded');
        const metrics = await (await fetch(`${child.url}metrics`)).text();
        expect(metrics).to.match(/job_robot_results_recorded_total\{state="succeeded",component="results"\} 1/);
        expect(metrics).to.match(/job_robot_results_replies_total\{type="dev.job-robot.job.succeeded",component="results"\} 1/);
        expect(child.output()).to.contain('SENDER AUTHENTICATION IS OFF');
      } finally {
        await child.stop();
      }
      expect(await child.exited).to.equal(0);
    });
  });

  describe('updates that change nothing', function () {
    it("a running Job's further updates do not touch Redis once its created state is recorded; its end does", async function () {
      const key = r.config.keys.result('quiet-1');
      expect((await postApiServerEvent(r.url, 'add', job('quiet-1', 'running'))).status).to.equal(202);
      expect(await r.client.hget(key, 'state')).to.equal('created');
      await r.client.del(key);
      expect((await postApiServerEvent(r.url, 'update', job('quiet-1', 'running'))).status).to.equal(202);
      expect(await r.client.exists(key), 'the update was answered without a write').to.equal(0);
      expect((await postApiServerEvent(r.url, 'update', job('quiet-1', 'Complete'))).status).to.equal(200);
      expect(await r.client.hget(key, 'state')).to.equal('succeeded');
    });
  });
});
