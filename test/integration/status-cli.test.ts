/**
 * `job-robot status` as a producer runs it: `node function/cli.ts status`, with the bridge's
 * variables pointing at a real redis-server and KUBECONFIG at the real control plane. Records are
 * written with the queue's own Results; Jobs are the ones the launcher builds for an event,
 * finished through the status subresource as the job controller would.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BatchV1Api, type V1Job } from '@kubernetes/client-node';
import { sourceUrl } from '../../function/kube/event-source.ts';
import { buildJob } from '../../function/launcher/job.ts';
import { queueKeys, type QueueKeys } from '../../function/queue/keys.ts';
import { Results } from '../../function/queue/results.ts';
import { freePort } from '../cluster/ports.ts';
import { finishedStatusPatch, type Outcome } from '../helpers/finished.ts';
import { plainJob } from '../helpers/jobs.ts';
import { adminKubeconfigPath, eventually, useNamespace } from '../helpers/kube.ts';
import { ROOT } from '../helpers/paths.ts';
import { uniquePrefix, usePrivateRedis } from '../helpers/redis.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('job-robot status (real Redis, real API server)', function () {
  this.timeout(60_000);
  const ns = useNamespace('status');
  const r = usePrivateRedis();
  let keys: QueueKeys;
  let batch: BatchV1Api;

  before(function () {
    batch = ns.kc.makeApiClient(BatchV1Api);
  });
  beforeEach(function () {
    keys = queueKeys(`${uniquePrefix('status')}queue`);
  });
  afterEach(async function () {
    await batch.deleteCollectionNamespacedJob({ namespace: ns.name, propagationPolicy: 'Background' });
  });

  const redisUrl = () => `redis://127.0.0.1:${r.server.port}/0`;
  /** The source the bridge sends for this queue. */
  const source = () => sourceUrl({ kind: 'standalone', host: '127.0.0.1', port: r.server.port, db: 0, tls: false }, keys.queue);
  const results = () => new Results(r.redis, keys);

  /** Starts the command; `done` resolves with its exit code and output. */
  function start(args: string[], env: Record<string, string> = {}): { done: Promise<Run> } {
    const child = spawn(process.execPath, [join(ROOT, 'function/cli.ts'), 'status', ...args], {
      env: { PATH: process.env['PATH'] ?? '', REDIS_URL: redisUrl(), QUEUE_KEY: keys.queue, KUBECONFIG: adminKubeconfigPath(), NAMESPACE: ns.name, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return { done: new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))) };
  }
  const status = (args: string[], env: Record<string, string> = {}) => start(args, env).done;

  /** The Job the launcher makes for event (`from`, id), finished as `outcome`, or still running (suspended). */
  async function jobFor(id: string, outcome?: Outcome, from = source()): Promise<V1Job> {
    const job = buildJob(plainJob('template'), { prefix: 'status-', ttlSeconds: 86_400, serviceAccount: 'job-robot-job' }, { source: from, id, type: 't', env: [] });
    job.spec!.suspend = true;
    const created = await batch.createNamespacedJob({ namespace: ns.name, body: job });
    if (!outcome) return created;
    return batch.patchNamespacedJobStatus({ name: created.metadata!.name!, namespace: ns.name, body: finishedStatusPatch(outcome, new Date(Date.now() - 60_000)) });
  }

  /** Resolves once the command is blocked in XREAD on the results stream (CLIENT LIST). */
  async function blockedInXread(): Promise<void> {
    await eventually(
      async () => {
        const list = String(await r.redis.call('CLIENT', 'LIST'));
        return list.split('\n').some((l) => l.includes('name=job-robot-status-wait') && l.includes('cmd=xread'));
      },
      20_000,
      'the status command to block in XREAD',
    );
  }

  it('a recorded result: its state, Job, times and reason, from the record; exit 0', async function () {
    await results().record([{ id: 'item-1', state: 'failed', source: source(), job: 'job-robot-abc', finished: new Date('2026-06-01T12:00:00Z'), reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }]);
    const run = await status(['item-1']);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.equal(
      [
        'item-1: failed',
        '  job       job-robot-abc',
        '  finished  2026-06-01T12:00:00.000Z',
        '  reason    BackoffLimitExceeded',
        '  message   Job has reached the specified backoff limit',
        '  from      the result record in Redis',
        '',
      ].join('\n'),
    );
  });

  it('--json: one JSON object with id, source, from, state, final and the record’s fields', async function () {
    await results().record([{ id: 'item-1', state: 'succeeded', source: source(), job: 'job-robot-abc', created: new Date('2026-06-01T11:00:00Z'), finished: new Date('2026-06-01T12:00:00Z'), reason: 'CompletionsReached' }]);
    const run = await status(['item-1', '--json']);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout.trimEnd().split('\n'), 'one line').to.have.length(1);
    expect(JSON.parse(run.stdout)).to.deep.equal({
      id: 'item-1',
      source: source(),
      from: 'record',
      state: 'succeeded',
      final: true,
      job: 'job-robot-abc',
      created: '2026-06-01T11:00:00.000Z',
      finished: '2026-06-01T12:00:00.000Z',
      reason: 'CompletionsReached',
    });
  });

  it('no record, but the Job exists: answered from the Job (found by its identity, whatever the name prefix)', async function () {
    const job = await jobFor('item-2', 'Failed');
    const run = await status(['item-2', '--json']);
    expect(run.code, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.include({ id: 'item-2', from: 'job', state: 'failed', final: true, job: job.metadata!.name, namespace: ns.name, reason: 'BackoffLimitExceeded' });
    const text = await status(['item-2']);
    expect(text.stdout).to.contain(`item-2: failed\n  job       ${job.metadata!.name}\n`);
    expect(text.stdout).to.contain(`  from      the Job in namespace ${ns.name} (no result record in Redis)\n`);
  });

  it('a running Job without a record is known but not final', async function () {
    await jobFor('item-3');
    const run = await status(['item-3']);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/^item-3: created \(not final yet\)\n/);
  });

  it('a Job of another event source with the same id is not this item’s; EVENT_SOURCE pins the source', async function () {
    await jobFor('item-4', 'Complete', 'urn:job-robot:orders');
    expect((await status(['item-4'])).code, 'the queue’s own source names another Job').to.equal(4);
    const pinned = await status(['item-4', '--json'], { EVENT_SOURCE: 'urn:job-robot:orders' });
    expect(JSON.parse(pinned.stdout)).to.deep.include({ from: 'job', state: 'succeeded', source: 'urn:job-robot:orders' });
  });

  it('unknown id: neither a record nor a Job; exit 4, and the source it looked for', async function () {
    const run = await status(['nobody']);
    expect(run.code, run.stderr).to.equal(4);
    expect(run.stdout).to.equal(`nobody: unknown: no result record in Redis and no Job in namespace ${ns.name}\n  source    ${source()}\n`);
    const json = await status(['nobody', '--json']);
    expect(json.code).to.equal(4);
    expect(JSON.parse(json.stdout)).to.deep.equal({ id: 'nobody', source: source(), from: 'none', state: 'unknown', final: false, namespace: ns.name });
  });

  it('--wait sees the result recorded while it waits; another item’s result does not end the wait', async function () {
    await results().record([{ id: 'item-5', state: 'created', job: 'job-robot-5' }]);
    const waiting = start(['item-5', '--wait', '30', '--json']);
    await blockedInXread();
    await results().record([{ id: 'someone-else', state: 'succeeded' }]);
    await results().record([{ id: 'item-5', state: 'succeeded', job: 'job-robot-5', reason: 'CompletionsReached' }]);
    const run = await waiting.done;
    expect(run.code, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.include({ id: 'item-5', state: 'succeeded', final: true, timedOut: false, reason: 'CompletionsReached' });
  });

  it('--wait on an id nobody knows yet ends when its item is dead-lettered: exit 1', async function () {
    const waiting = start(['item-6', '--wait', '30']);
    await blockedInXread();
    await results().record([{ id: 'item-6', state: 'dead-lettered', reason: 'too-large' }]);
    const run = await waiting.done;
    expect(run.code, run.stderr).to.equal(1);
    expect(run.stdout).to.match(/^item-6: dead-lettered\n/);
  });

  it('--wait answers at once when the result is already final: failed is exit 1, even from the Job alone', async function () {
    await jobFor('item-7', 'Failed');
    const started = Date.now();
    const run = await status(['item-7', '--wait', '30']);
    expect(run.code, run.stderr).to.equal(1);
    expect(Date.now() - started).to.be.below(15_000);
  });

  it('--wait that runs out: exit 2, with what is known so far', async function () {
    await results().record([{ id: 'item-8', state: 'created', job: 'job-robot-8' }]);
    const run = await status(['item-8', '--wait', '1']);
    expect(run.code, run.stderr).to.equal(2);
    expect(run.stdout).to.equal('item-8: created (not final yet)\n  job       job-robot-8\n  from      the result record in Redis\ntimed out after 1 s waiting for a final state\n');
    const json = await status(['item-8', '--wait', '0.5', '--json']);
    expect(json.code).to.equal(2);
    expect(JSON.parse(json.stdout)).to.deep.include({ state: 'created', final: false, timedOut: true });
  });

  it('bad arguments: exit 64 with the usage', async function () {
    for (const args of [[], ['a', 'b'], ['a', '--wait', 'soon'], ['a', '--wait', '-1'], ['a', '--colour'], ['has space']]) {
      const run = await status(args);
      expect(run.code, args.join(' ')).to.equal(64);
      expect(run.stderr, args.join(' ')).to.contain('usage: job-robot status <id>');
    }
  });

  it('a Redis that does not answer: exit 75 naming it, no stack trace', async function () {
    const run = await status(['item-1'], { REDIS_URL: `redis://127.0.0.1:${await freePort()}/0` });
    expect(run.code).to.equal(75);
    expect(run.stderr).to.match(/^job-robot status: cannot read results from redis:\/\/127\.0\.0\.1:\d+\/0: /);
    expect(run.stderr).to.not.contain('    at ');
  });

  it('bad configuration: exit 78 naming the variable', async function () {
    const run = await status(['item-1'], { MODE: 'queue' });
    expect(run.code).to.equal(78);
    expect(run.stderr).to.contain('MODE');
  });
});
