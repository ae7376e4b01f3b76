/**
 * Back-pressure through the whole pipeline: the kubelet stand-in holds the Jobs' pods running, so
 * the launcher reaches MAX_ACTIVE_JOBS and answers 429 with Retry-After. The bridge must back off
 * (a few retries a second, not a storm), keep every item in Redis, dead-letter none, and the flow
 * must resume by itself once the Jobs finish, never holding more Jobs active than the cap.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { readDeadLetters } from '../helpers/dead-letters.ts';
import { eventually } from '../helpers/kube.ts';
import { deliveredItem } from '../helpers/pipeline.ts';
import { usePipelineRun } from '../helpers/pipeline-run.ts';

const ITEMS = 30;
const CAP = 5;
const CONCURRENCY = 4;
const RETRY_AFTER_SECONDS = 1;

describe("pipeline back-pressure: the launcher's MAX_ACTIVE_JOBS reached while Jobs are held running", function () {
  this.timeout(120_000);
  const run = usePipelineRun('e2e-cap', { ownControlPlane: "its kubelets would run the Jobs' pods; this test holds them running with the kubelet stand-in" });

  it('the bridge backs off on 429, loses and dead-letters nothing, and the flow resumes when Jobs finish', async function () {
    const { redis, ledger } = run;
    const p = await run.start({
      launcherEnv: { MAX_ACTIVE_JOBS: String(CAP), RETRY_AFTER_SECONDS: String(RETRY_AFTER_SECONDS), LOG_LEVEL: 'warn' },
      bridgeEnv: { CONCURRENCY: String(CONCURRENCY), BACKOFF_MIN_MS: '50', BACKOFF_MAX_MS: '5000', MAX_ATTEMPTS: '3' },
      reaperEnv: { REAPER_SUCCEEDED_MAX_AGE: '1s', LOG_LEVEL: 'warn' },
      kubelet: { runMs: 200, intervalMs: 200 },
      pingEveryMs: 1000,
    });
    const queue = run.queue;
    p.kubelet!.pause(); // pods stay running: every Job stays active
    const marker = `cap-${randomBytes(3).toString('hex')}`;
    const markers = Array.from({ length: ITEMS }, (_, i) => `${marker}-${String(i).padStart(2, '0')}`);
    await redis.lpush(queue, ...markers.map((m) => JSON.stringify({ marker: m })));

    // The cap is reached: CAP Jobs, then 429s that the bridge counts as throttled retries.
    const atCapacity = () => p.launcher.metric('job_robot_launcher_rejections_total', { reason: 'at-capacity' });
    const throttled = () => p.bridge.metric('job_robot_bridge_retried_total', { reason: 'throttled' });
    await eventually(async () => ledger.entries.size >= CAP && (await atCapacity()) > 0, 30_000, `${CAP} Jobs and a 429`);

    // Backing off: with CONCURRENCY sends at most and Retry-After honoured, the 429s come at about
    // CONCURRENCY per RETRY_AFTER_SECONDS. A bridge that ignored Retry-After would send hundreds.
    const start = { at: Date.now(), rejected: await atCapacity() };
    await eventually(async () => (await atCapacity()) - start.rejected >= 3 * CONCURRENCY, 30_000, 'a dozen more 429s');
    const seconds = (Date.now() - start.at) / 1000;
    const rate = ((await atCapacity()) - start.rejected) / seconds;
    expect(rate, `429s per second over ${seconds.toFixed(1)} s`).to.be.at.most((1.5 * CONCURRENCY) / RETRY_AFTER_SECONDS + 1);
    // The launcher counts a 429 as it answers; the bridge once the answer has reached it.
    await eventually(async () => (await throttled()) >= 3 * CONCURRENCY, 5_000, "the bridge's throttled retries to catch up with the 429s sent").catch(() => undefined);
    expect(await throttled(), "the bridge's throttled retries").to.be.at.least(3 * CONCURRENCY);

    // Held at the cap: no more Jobs than CAP, nothing dead-lettered, the rest waiting in Redis.
    expect(ledger.entries.size, 'Jobs while held at the cap').to.equal(CAP);
    expect(await redis.xlen(p.keys.deadLetter), 'dead letters while throttled').to.equal(0);
    const waiting = (await redis.llen(queue)) + (await redis.hlen(p.keys.items));
    expect(waiting, 'items without a Job still in Redis (queued or claimed)').to.equal(ITEMS - CAP);
    const heldStats = { jobs: ledger.entries.size, rejected: (await atCapacity()) - start.rejected, seconds: Number(seconds.toFixed(1)), throttled: await throttled() };

    // Jobs finish: the flow resumes on its own, CAP at a time.
    p.kubelet!.resume();
    await eventually(async () => ledger.all().filter((e) => e.finished === 'Complete').length >= ITEMS, 90_000, `all ${ITEMS} Jobs complete`);
    await eventually(async () => (await redis.llen(queue)) + (await redis.hlen(p.keys.items)) === 0, 15_000, 'Redis to let go of every item');

    const jobs = ledger.all();
    const byMarker = new Map<string, number>();
    for (const e of jobs) {
      const m = JSON.parse(deliveredItem(e.job)!.bytes.toString('utf8')).marker as string;
      byMarker.set(m, (byMarker.get(m) ?? 0) + 1);
    }
    expect([...byMarker.keys()].sort(), 'one Job per item, none lost').to.deep.equal(markers);
    expect([...byMarker.values()].every((n) => n === 1), 'no item with two Jobs').to.equal(true);
    expect(await readDeadLetters(redis, p.keys.deadLetter)).to.deep.equal([]);
    expect(ledger.maxActive(), 'most Jobs active at once').to.be.at.most(CAP);
    expect(await p.bridge.metric('job_robot_bridge_delivered_total')).to.equal(ITEMS);
    process.stderr.write(`      held at the cap: ${JSON.stringify(heldStats)}; then ${ITEMS} Jobs, at most ${ledger.maxActive()} active at once, 0 dead letters\n`);
  });
});
