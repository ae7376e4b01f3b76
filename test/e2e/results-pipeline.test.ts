/**
 * Results end to end: the bridge (with producer ids), the launcher, the real job controller with
 * the kubelet stand-in, Knative's own ApiServerSource adapter feeding the results function, and the
 * reaper as the backstop. Every item ends in exactly one final state in Redis, the producer can
 * wait for its own id, and killing the results function loses no result.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { V1Job } from '@kubernetes/client-node';
import { isFinal, Results, type ResultRecord } from '../../function/queue/results.ts';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { eventually } from '../helpers/kube.ts';
import { readRepoFile, ROOT } from '../helpers/paths.ts';
import { shippedTemplate } from '../helpers/pipeline.ts';
import { usePipelineRun } from '../helpers/pipeline-run.ts';

/** The shipped template, failing for good at the first failed pod (so a failure takes seconds). */
function templateFailingFast(): V1Job {
  const t = shippedTemplate();
  t.spec!.backoffLimit = 0;
  return t;
}

const FAIL_MARK = 'fail-me';

describe('results end to end: every item ends in exactly one final state, and its producer can wait for it', function () {
  this.timeout(300_000);
  const run = usePipelineRun('e2e-results', { ownControlPlane: "Knative's ApiServerSource adapter runs against the control plane this run started" });
  const results = () => new Results(run.redis, run.pipe.keys);
  const record = (id: string) => results().get(id);
  const final = async (ids: string[]): Promise<(ResultRecord | undefined)[]> => {
    const records = await results().getMany(ids);
    return records.every((r) => r && isFinal(r.state)) ? records : [];
  };
  const jobNameOf = (id: string) => run.ledger.all().filter((e) => e.eventId === id).map((e) => e.name);
  const resultsStream = async () => (await run.redis.xrange(run.pipe.keys.results, '-', '+')).map(([, f]) => f[f.indexOf('id') + 1]!);

  before(async function () {
    await run.start({
      results: true,
      bridgeEnv: { ID_FIELD: 'requestId', MAX_ITEM_BYTES: String(64 * 1024), BACKOFF_MAX_MS: '500' },
      // Small enough that one item of the test is refused with 413 and dead-lettered by the bridge.
      launcherEnv: { MAX_EVENT_BYTES: '4096' },
      template: templateFailingFast(),
      kubelet: { runMs: 1500, outcome: (pod) => (JSON.stringify(pod.spec).includes(FAIL_MARK) ? 'Failed' : 'Succeeded') },
    });
  });

  it('created then succeeded, created then failed, dead-lettered, and a duplicate id: one final state each', async function () {
    const redis = run.redis;
    await redis.lpush(run.queue, JSON.stringify({ requestId: 'ok-1', report: 'monthly' }));
    await redis.lpush(run.queue, JSON.stringify({ requestId: 'bad-1', report: FAIL_MARK }));
    await redis.lpush(run.queue, JSON.stringify({ requestId: 'big-1', padding: 'x'.repeat(8 * 1024) }));
    await eventually(async () => (await record('ok-1')) !== undefined, 30_000, 'ok-1 accepted');
    await redis.lpush(run.queue, JSON.stringify({ requestId: 'ok-1', report: 'again' }));

    const ids = ['ok-1', 'bad-1', 'big-1'];
    let records: (ResultRecord | undefined)[] = [];
    await eventually(async () => (records = await final(ids)).length === 3, 120_000, 'three final results');
    const [ok, bad, big] = records as ResultRecord[];

    expect(ok).to.deep.include({ id: 'ok-1', state: 'succeeded', source: run.pipe.source });
    expect(jobNameOf('ok-1'), 'the record names the Job made for the id').to.deep.equal([ok!.job]);
    expect(ok!.created).to.be.a('string');
    expect(ok!.finished).to.be.a('string');

    expect(bad).to.deep.include({ id: 'bad-1', state: 'failed', reason: 'BackoffLimitExceeded' });
    expect(jobNameOf('bad-1')).to.deep.equal([bad!.job]);

    expect(big).to.deep.include({ id: 'big-1', state: 'dead-lettered' });
    expect(big!.reason).to.match(/413/);
    expect(jobNameOf('big-1'), 'no Job for a dead-lettered item').to.deep.equal([]);

    const letters = await readDeadLetters(run.redis, run.pipe.keys.deadLetter);
    const duplicate = letters.find((l) => /^duplicate-id: /.test(l.reason));
    expect(duplicate?.id, 'the second ok-1 is dead-lettered as a duplicate').to.equal('ok-1');
    expect(JSON.parse(duplicate!.item.toString('utf8')).report).to.equal('again');
    expect(jobNameOf('ok-1'), 'and made no second Job').to.have.length(1);

    // Created was recorded before each final state, by the results function, from the adapter's events.
    expect(await run.pipe.results!.metric('job_robot_results_recorded_total', { state: 'created' })).to.be.at.least(2);
    const announced = await resultsStream();
    for (const id of ids) expect(announced.filter((x) => x === id), `${id} announced once on the results stream`).to.have.length(1);
  });

  it("a producer waiting on the results stream sees its own id: the README's TypeScript producer, as written", async function () {
    const readme = readRepoFile('README.md');
    const block = /<!-- producer-example:[^>]*-->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, "the README's producer example").to.be.a('string');
    const dir = mkdtempSync(join(tmpdir(), 'job-robot-producer-'));
    try {
      // As in a producer's own project: its package.json, and ioredis among its node_modules.
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      const file = join(dir, 'producer.ts');
      writeFileSync(file, block!.replaceAll("'job-robot:queue'", JSON.stringify(run.queue)));
      const out = await runNode(file, { REDIS_URL: process.env['JOB_ROBOT_TEST_REDIS_URL']!, REQUEST_ID: 'readme-1' }, dir);
      expect(out.code, out.stderr).to.equal(0);
      const outcome = JSON.parse(out.stdout.trim().split('\n').at(-1)!) as Record<string, string>;
      expect(outcome).to.deep.include({ id: 'readme-1', state: 'succeeded' });
      expect(jobNameOf('readme-1')).to.deep.equal([outcome['job']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the results function killed mid-stream: no result is lost', async function () {
    const ids = Array.from({ length: 30 }, (_, i) => `kill-${i}`);
    const results = run.pipe.results!;
    for (const id of ids) await run.redis.lpush(run.queue, JSON.stringify({ requestId: id }));
    await eventually(async () => ids.filter((id) => jobNameOf(id).length).length >= 5, 60_000, 'a few Jobs made');
    await results.kill9();
    await new Promise((r) => setTimeout(r, 4_000)); // the adapter gives up on what it could not send in about 3 s
    results.start();
    await results.ready();
    let records: (ResultRecord | undefined)[] = [];
    await eventually(async () => (records = await final(ids)).length === ids.length, 120_000, 'every result final');
    for (const [i, r] of records.entries()) {
      expect(r!.state, ids[i]).to.equal('succeeded');
      expect(jobNameOf(ids[i]!), `${ids[i]}'s record names its Job`).to.deep.equal([r!.job]);
    }
    const announced = await resultsStream();
    for (const id of ids) expect(announced.filter((x) => x === id), `${id} announced once`).to.have.length(1);
  });

  it('the results function and the adapter lost together while Jobs finish (a node gone): the reaper records every result', async function () {
    const ids = Array.from({ length: 10 }, (_, i) => `node-${i}`);
    const { results: fn, jobWatch, kubelet, reaper } = run.pipe;
    const byReaper = () => reaper!.metric('job_robot_reaper_results_recorded_total', { state: 'succeeded' });
    kubelet!.pause();
    for (const id of ids) await run.redis.lpush(run.queue, JSON.stringify({ requestId: id }));
    await eventually(async () => (await results().getMany(ids)).every((r) => r?.state === 'created'), 60_000, 'every Job created and recorded so');
    await Promise.all([fn!.kill9(), jobWatch!.kill('SIGKILL')]);
    const before = await byReaper();
    kubelet!.resume();
    await eventually(async () => ids.every((id) => run.ledger.all().some((e) => e.eventId === id && e.finished === 'Complete')), 60_000, 'every Job complete');
    // Back again: a restarted adapter sends nothing for Jobs that already exist, so only the backstop can record them.
    fn!.start();
    await fn!.ready();
    await jobWatch!.restart();
    let records: (ResultRecord | undefined)[] = [];
    await eventually(async () => (records = await final(ids)).length === ids.length, 120_000, 'every result final');
    expect(records.map((r) => r!.state)).to.deep.equal(ids.map(() => 'succeeded'));
    expect((await byReaper()) - before, 'all recorded by the reaper').to.equal(ids.length);
  });
});

function runNode(file: string, env: Record<string, string>, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
