/**
 * The whole pipeline under faults: 2,000 items pushed onto the Redis queue while the bridge is
 * killed with SIGKILL (and restarted) at least five times, the launcher at least five times, and
 * the kube-apiserver restarted once. The kubelet stand-in completes the Jobs' pods and the reaper,
 * pinged every second and a half with a short retention, deletes the finished Jobs.
 *
 * Each item carries a unique marker; a watch notes every Job the namespace ever held, and the Job's
 * CE_DATA gives back the item, so the test maps each item to its Jobs (and its dead letters).
 * At the end every item has exactly one Job or sits in the dead-letter stream with a reason; no
 * event id got a second Job (not even after its first was reaped); every Job finished and was
 * reaped; every item has one final result naming its Job (the results function, fed by Knative's
 * ApiServerSource adapter, with the reaper as the backstop); Redis holds nothing but dead letters
 * and results.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { readDeadLetters, type DeadLetter } from '../helpers/dead-letters.ts';
import { controlPlane } from '../cluster/fixture.ts';
import { allKeys, pause } from '../helpers/bridge.ts';
import type { LedgerEntry } from '../helpers/job-ledger.ts';
import { eventually } from '../helpers/kube.ts';
import { crashBridge, crashLauncher, faultPoint } from '../helpers/faults.ts';
import { Results } from '../../function/queue/results.ts';
import { Component, deliveredId, deliveredItem } from '../helpers/pipeline.ts';
import { usePipelineRun } from '../helpers/pipeline-run.ts';

const TOTAL = 2_000;
const BATCH = 20;
const PUSH_EVERY_MS = 400;
type Fault = 'bridge' | 'launcher' | 'api-server';
/** Interleaved, each at the next step of progress (Jobs seen), so every fault lands while items flow. */
const FAULTS: Fault[] = ['bridge', 'launcher', 'bridge', 'launcher', 'api-server', 'bridge', 'launcher', 'bridge', 'launcher', 'bridge', 'launcher'];

/** The marker of an item of this test, in whatever bytes carry it. */
const markerOf = (bytes: Buffer): string | undefined => /e2e-[0-9a-f]{6}-\d{4}/.exec(bytes.toString('latin1'))?.[0];

interface Outcome {
  pushed: number;
  jobs: LedgerEntry[];
  deadLetters: DeadLetter[];
  faults: Record<Fault, number>;
  seconds: number;
}

describe('pipeline under faults: 2,000 items while the bridge and the launcher are killed -9 and the API server restarts', function () {
  // A run took 380 s on 2 loaded cores: room enough that a slow run is judged by its own waits, which say what did not happen.
  this.timeout(600_000);
  const run = usePipelineRun('e2e-faults', { ownControlPlane: 'this test restarts the kube-apiserver, which only a control plane this run started can do' });
  let outcome: Outcome | undefined;
  let progress: NodeJS.Timeout | undefined;
  const markers: string[] = [];
  after(function () {
    clearInterval(progress);
  });

  it('runs: items pushed, faults injected, everything settles', async function () {
    const cp = controlPlane()!;
    const { ns, redis, ledger } = run;
    const t0 = Date.now();
    // Items with a Job so far (a duplicate Job must not make the count look complete).
    const withJob = new Set<string>();
    ledger.onNew((e) => withJob.add(markerOf(deliveredItem(e.job)?.bytes ?? Buffer.alloc(0)) ?? e.name));
    const p = await run.start({
      launcherEnv: { MAX_ACTIVE_JOBS: '1000', RETRY_AFTER_SECONDS: '1', KUBE_TIMEOUT_SECONDS: '5', LOG_LEVEL: 'warn' },
      bridgeEnv: { CONSUMER: 'bridge-0', LEASE_MS: '3000', BACKOFF_MIN_MS: '50', BACKOFF_MAX_MS: '2000', SEND_TIMEOUT_MS: '10000' },
      reaperEnv: { REAPER_SUCCEEDED_MAX_AGE: '1s', REAPER_FAILED_MAX_AGE: '1s', LOG_LEVEL: 'warn' },
      kubelet: { runMs: 500, intervalMs: 500 },
      pingEveryMs: 1500,
      results: true,
      resultsEnv: { LOG_LEVEL: 'warn' },
    });
    const queue = run.queue;
    const tag = randomBytes(3).toString('hex');
    for (let i = 0; i < TOTAL; i++) markers.push(`e2e-${tag}-${String(i).padStart(4, '0')}`);

    let pushed = 0;
    const producer = (async () => {
      for (let i = 0; i < TOTAL; i += BATCH) {
        const items = markers.slice(i, i + BATCH).map((marker, j) => JSON.stringify({ marker, n: i + j, note: 'e2e under faults' }));
        await redis.lpush(queue, ...items);
        pushed += items.length;
        await pause(PUSH_EVERY_MS);
      }
    })();

    const faults: Record<Fault, number> = { bridge: 0, launcher: 0, 'api-server': 0 };
    progress = setInterval(() => {
      const all = ledger.all();
      const metric = (c: Component, name: string, labels?: Record<string, string>) => (c.alive ? c.metric(name, labels).catch(() => NaN) : Promise.resolve(NaN));
      void Promise.all([
        redis.llen(queue),
        metric(p.launcher, 'job_robot_launcher_active_jobs'),
        metric(p.launcher, 'job_robot_launcher_rejections_total'),
        metric(p.bridge, 'job_robot_bridge_retried_total'),
        metric(p.bridge, 'job_robot_bridge_in_flight'),
      ]).then(([depth, active, rejected, retried, inFlight]) =>
        process.stderr.write(
          `      ${((Date.now() - t0) / 1000).toFixed(0)}s: pushed ${pushed}, queue ${depth}, Jobs seen ${all.length}, finished ${all.filter((e) => e.finished).length}, reaped ${all.filter((e) => e.deletedAt !== undefined).length}; launcher active ${active} rejected ${rejected}; bridge in flight ${inFlight} retried ${retried}; kubelet finished ${p.kubelet?.finished()}\n`,
        ),
      ).catch(() => undefined); // a line of progress is not worth an unhandled rejection (Redis closed after a failure)
    }, 10_000);
    const deadLetterCount = () => redis.xlen(p.keys.deadLetter);
    for (const [k, fault] of FAULTS.entries()) {
      // Spread over the first three quarters of the flow: fault k once (k+1)/(n+1) of them have a Job or a dead letter.
      const through = await faultPoint(k, FAULTS.length, TOTAL, async () => ledger.entries.size + (await deadLetterCount()), fault);
      const at = ((Date.now() - t0) / 1000).toFixed(1);
      if (fault === 'bridge') {
        await crashBridge(p.bridge, faults.bridge);
      } else if (fault === 'launcher') {
        await crashLauncher(p.launcher);
      } else {
        await cp.restartApiServer();
      }
      faults[fault] += 1;
      process.stderr.write(`      ${at}s: ${fault} ${fault === 'api-server' ? 'restarted' : 'killed -9 and restarted'} with ${through} of ${TOTAL} items through\n`);
    }
    await producer;

    // Settles: every item has a Job or a dead letter, and every Job is finished and reaped.
    const deadLetters = async () => readDeadLetters(redis, p.keys.deadLetter);
    await eventually(async () => withJob.size + (await deadLetterCount()) >= TOTAL, 180_000, `all ${TOTAL} items to have a Job or a dead letter`);
    const batch = ns.kc.makeApiClient(BatchV1Api);
    await eventually(
      async () => ledger.live().length === 0 && (await batch.listNamespacedJob({ namespace: ns.name })).items.length === 0,
      180_000,
      'every Job to be reaped',
    );
    // The claims left by consumers that died under an old name are adopted and settled too.
    await eventually(async () => (await redis.zcard(p.keys.consumers)) === 1, 30_000, 'only the live consumer to hold a lease');
    clearInterval(progress);
    const exit = await p.bridge.terminate();
    expect(exit, 'the bridge stops cleanly on SIGTERM').to.deep.equal({ code: 0, signal: null });

    outcome = { pushed, jobs: ledger.all(), deadLetters: await deadLetters(), faults, seconds: (Date.now() - t0) / 1000 };
    const core = ns.kc.makeApiClient(CoreV1Api);
    const pods = (await core.listNamespacedPod({ namespace: ns.name })).items.length;
    const counts = {
      pushed,
      jobs: outcome.jobs.length,
      deadLettered: outcome.deadLetters.length,
      reaped: outcome.jobs.filter((e) => e.deletedAt !== undefined).length,
      reapedUnseen: outcome.jobs.filter((e) => e.vanished).length,
      podsLeft: pods,
      bridgeKills: faults.bridge,
      launcherKills: faults.launcher,
      apiServerRestarts: faults['api-server'],
      watchRelists: ledger.relists,
      watchBreaks: ledger.breaks,
      reaperPings: p.pings(),
      seconds: Math.round(outcome.seconds),
    };
    process.stderr.write(`      counts: ${JSON.stringify(counts)}\n`);
    expect(pushed).to.equal(TOTAL);
    expect(faults).to.deep.equal({ bridge: 5, launcher: 5, 'api-server': 1 });
  });

  it('every item has exactly one Job or one dead letter with a reason: none lost, none duplicated', function () {
    if (!outcome) throw new Error('the fault run above did not finish, so there is nothing to check');
    const { jobs, deadLetters } = outcome!;
    const jobsOf = new Map<string, LedgerEntry[]>();
    for (const e of jobs) {
      const marker = markerOf(deliveredItem(e.job)?.bytes ?? Buffer.alloc(0));
      expect(marker, `Job ${e.name} carries an item of this run`).to.be.a('string');
      jobsOf.set(marker!, [...(jobsOf.get(marker!) ?? []), e]);
    }
    const lettersOf = new Map<string, DeadLetter[]>();
    for (const d of deadLetters) {
      const marker = markerOf(d.item);
      expect(marker, `dead letter ${d.entry} holds an item of this run`).to.be.a('string');
      expect(d.reason, `dead letter ${d.entry} says why`).to.not.equal('');
      lettersOf.set(marker!, [...(lettersOf.get(marker!) ?? []), d]);
    }
    const lost = markers.filter((m) => !jobsOf.has(m) && !lettersOf.has(m));
    const twice = markers
      .filter((m) => (jobsOf.get(m)?.length ?? 0) + (lettersOf.get(m)?.length ?? 0) > 1)
      .map((m) => ({ item: m, jobs: (jobsOf.get(m) ?? []).map((e) => `${e.name} (event ${e.eventId})`), deadLetters: (lettersOf.get(m) ?? []).map((d) => d.reason) }));
    expect(lost.length, `${lost.length} items with neither a Job nor a dead letter, e.g. ${lost.slice(0, 5).join(', ')}`).to.equal(0);
    expect(twice.length, `${twice.length} items with more than one Job or dead letter, e.g. ${JSON.stringify(twice.slice(0, 3))}`).to.equal(0);
    expect([...jobsOf.keys(), ...lettersOf.keys()].every((m) => markers.includes(m))).to.equal(true);
    // Under these faults the launcher never refuses an item: dead letters would mean a fault was counted against one.
    expect(deadLetters.map((d) => d.reason), 'dead letters').to.deep.equal([]);
  });

  it('each Job carries its event identity: one Job per event id, ever, and the bridge\'s source', function () {
    if (!outcome) throw new Error('the fault run above did not finish, so there is nothing to check');
    const byId = new Map<string, LedgerEntry[]>();
    for (const e of outcome!.jobs) byId.set(e.eventId, [...(byId.get(e.eventId) ?? []), e]);
    const recreated = [...byId].filter(([, es]) => es.length > 1).map(([id, es]) => ({ id, jobs: es.map((e) => `${e.name} ${e.uid}`) }));
    expect(recreated.length, `${recreated.length} event ids with a second Job, e.g. ${JSON.stringify(recreated.slice(0, 3))}`).to.equal(0);
    for (const e of outcome!.jobs) {
      expect(e.eventId, `${e.name}'s event id annotation`).to.not.equal('');
      expect(deliveredId(e.job), `${e.name}'s CE_ID`).to.equal(e.eventId);
      expect(e.eventSource, `${e.name}'s event source`).to.equal(run.pipe.source);
    }
  });

  it('every Job finished before the reaper deleted it, and none is left', function () {
    if (!outcome) throw new Error('the fault run above did not finish, so there is nothing to check');
    const notReaped = outcome!.jobs.filter((e) => e.deletedAt === undefined).map((e) => e.name);
    expect(notReaped, 'Jobs never deleted').to.deep.equal([]);
    const deletedActive = outcome!.jobs.filter((e) => e.deletedActive).map((e) => e.name);
    expect(deletedActive, 'Jobs deleted before they finished').to.deep.equal([]);
    const seenFinished = outcome!.jobs.filter((e) => e.finished === 'Complete').length;
    // A Job whose deletion fell into the API server's restart may have finished unseen; all others were seen Complete.
    expect(seenFinished + outcome!.jobs.filter((e) => e.vanished).length).to.be.at.least(outcome!.jobs.length);
  });

  it('every item has one final result, succeeded and naming its Job, announced once on the results stream', async function () {
    if (!outcome) throw new Error('the fault run above did not finish, so there is nothing to check');
    const { keys } = run.pipe;
    const results = new Results(run.redis, keys);
    const records = await results.getMany(outcome.jobs.map((e) => e.eventId));
    const wrong = outcome.jobs
      .map((e, i) => ({ job: e.name, id: e.eventId, record: records[i] }))
      .filter(({ job, record }) => record?.state !== 'succeeded' || record.job !== job || record.source !== run.pipe.source);
    expect(wrong.length, `${wrong.length} Jobs without a matching succeeded result, e.g. ${JSON.stringify(wrong.slice(0, 3))}`).to.equal(0);
    const recordKeys = (await allKeys(run.redis)).filter((k) => k.startsWith(keys.resultPrefix));
    expect(recordKeys.length, 'one record per item, no more').to.equal(TOTAL);
    const announced = (await run.redis.xrange(keys.results, '-', '+')).map(([, f]) => f[f.indexOf('id') + 1]);
    expect(announced.length, 'one results-stream entry per item').to.equal(TOTAL);
    expect(new Set(announced).size).to.equal(TOTAL);
  });

  it('Redis ends with nothing but the dead-letter stream and the results: no claims, leases or attempts left', async function () {
    if (!outcome) throw new Error('the fault run above did not finish, so there is nothing to check');
    const { keys } = run.pipe;
    const left = (await allKeys(run.redis)).filter((k) => k.includes(keys.queue) && k !== keys.deadLetter && k !== keys.results && !k.startsWith(keys.resultPrefix));
    expect(left).to.deep.equal([]);
  });
});
