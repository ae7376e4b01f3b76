/**
 * `npm run bench -- pipeline`: the whole pipeline (Redis queue → bridge → launcher → Job) against a
 * bare create loop, in one run, on one private control plane and one private Redis.
 *
 * - Latency at a steady rate: items pushed on a fixed schedule (open loop), push to Job created as
 *   seen by a watch, and push to the item's result recorded in Redis (the results function, fed by
 *   Knative's ApiServerSource adapter, as shipped), against the same number of bare creates on the
 *   same schedule (the call's latency, and call start to the Job seen by the same watch).
 * - Maximum sustained throughput: a backlog of items pushed at once, drained by the bridge
 *   (CONCURRENCY sends in flight, and twice that), against a closed create loop at
 *   the same two concurrencies; each side's better median counts. Jobs per second from the 10th
 *   to the 90th percentile of the Jobs seen, median over the rounds; the order alternates. The
 *   pipeline runs with results on, and once per round with them off, to show what they cost.
 *
 * Both sides create the same Job body (the launcher's own buildJob on the same template) as the
 * same ServiceAccount; the bare loop at its best: a thread of its own, one connection pool
 * (kube/rest.ts, the launcher's own transport), and each body serialized before it is timed.
 * Jobs are suspended, so the job controller adds no pod traffic. The machine's two CPUs are shared
 * by everything, the API server and etcd included: the figures move with other load on it.
 *
 * Prints tables and KEDA's default poll for comparison; writes the raw latency samples to
 * bench-results/pipeline-latency.json (for the chart of `npm run bench`); the last stdout line is
 * `{"bench":"pipeline","ratio":<throughput ratio>,...}`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { KubeConfig, type V1Job } from '@kubernetes/client-node';
import { CloudEvent } from 'cloudevents';
import { Redis } from 'ioredis';
import { eventEnv } from '../../function/launcher/event-env.ts';
import { buildJob } from '../../function/launcher/job.ts';
import { DEFAULT_TEMPLATE } from '../../function/kube/job-template.ts';
import { QUEUE_ITEM_TYPE } from '../../function/events.ts';
import { INSTANCE_LABEL } from '../../function/kube/labels.ts';
import { restOf } from '../../function/kube/client.ts';
import { createJob } from '../../function/kube/jobs-api.ts';
import { startControlPlane } from '../cluster/control-plane.ts';
import { JobLedger } from '../helpers/job-ledger.ts';
import { adminConfig, createNamespace } from '../helpers/kube.ts';
import { Component, deliveredItem, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startRedis } from '../helpers/redis.ts';
import { percentile, printResult, printTable, type Row } from './report.ts';
import { LATENCY_SAMPLES, RESULTS_DIR } from './results.ts';

const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
};

/** Items per second for the latency phase: well below the maximum, as a steady production load. */
const RATE = num('BENCH_PIPELINE_RATE', 25);
const LATENCY_ITEMS = num('BENCH_PIPELINE_LATENCY_ITEMS', 300);
const THROUGHPUT_ITEMS = num('BENCH_PIPELINE_ITEMS', 1000);
const ROUNDS = num('BENCH_PIPELINE_ROUNDS', 3);
const CONCURRENCY = num('BENCH_PIPELINE_CONCURRENCY', 16);
/** KEDA's ScaledJob checks its scaler every pollingInterval, 30 s unless configured. */
const KEDA_POLL_S = 30;

const now = (): number => performance.timeOrigin + performance.now();
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - now())));

/**
 * The Job the launcher builds for item `data` with event id `id`: the bare loop creates this body,
 * plus an instance label, so that the pipeline's watchers of its own Jobs (the launcher's active-Job
 * count, the ApiServerSource adapter feeding the results function) leave the bare Jobs alone, as
 * they would another job-robot's: the bare loop pays for none of the pipeline's work.
 */
function jobFor(template: V1Job, source: string, id: string, data: unknown): V1Job {
  const event = new CloudEvent<unknown>({ id, source, type: QUEUE_ITEM_TYPE, datacontenttype: 'application/json', data });
  const job = buildJob(template, { prefix: 'bare-', ttlSeconds: 604800, serviceAccount: 'job-robot-job' }, { source, id, type: QUEUE_ITEM_TYPE, env: eventEnv(event, 65536) });
  job.metadata!.labels = { ...job.metadata!.labels, [INSTANCE_LABEL]: 'bench-bare' };
  return job;
}

/** Runs `total` calls of `one(i)` with `concurrency` in flight. */
async function closedLoop(total: number, concurrency: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await one(next++);
    }),
  );
}

/**
 * The bare loop runs in a thread of its own, so the watch that times both sides (in the main
 * thread) never delays its calls, with one shared connection pool (CallOptions, as the launcher
 * has): the best a plain client can do, not client-node's default of a TLS handshake per call.
 */
type BareTask =
  | { kind: 'steady'; bodies: V1Job[]; rate: number }
  | { kind: 'closed'; bodies: V1Job[]; concurrency: number };
/** For each Job: its name, when its create call started and how long it took (ms). */
type BareTimes = Array<[name: string, startedAt: number, ms: number]>;

async function bareWorker(kubeconfig: string, namespace: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  // The faster transport in the launcher benchmark: kube/rest.ts's pool, with each body serialized
  // before the clock starts.
  const rest = restOf(kc, 30_000);
  const create = async (json: string, name: string, times: BareTimes) => {
    const s = now();
    await createJob(rest, namespace, json);
    times.push([name, s, now() - s]);
  };
  parentPort!.on('message', (task: BareTask | 'exit') => {
    if (task === 'exit') {
      rest.close();
      process.exit(0);
    }
    const times: BareTimes = [];
    const jsons = task.bodies.map((b) => JSON.stringify(b));
    const names = task.bodies.map((b) => b.metadata!.name!);
    const run =
      task.kind === 'closed'
        ? closedLoop(jsons.length, task.concurrency, (i) => create(jsons[i]!, names[i]!, times))
        : (async () => {
            const t0 = now() + 50;
            const inFlight: Promise<void>[] = [];
            for (const [i, json] of jsons.entries()) {
              await sleepUntil(t0 + (i * 1000) / task.rate);
              inFlight.push(create(json, names[i]!, times));
            }
            await Promise.all(inFlight);
          })();
    run.then(
      () => parentPort!.postMessage({ times }),
      (err: unknown) => parentPort!.postMessage({ error: String((err as Error)?.message ?? err) }),
    );
  });
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'bare-loop') {
  const { kubeconfig, namespace } = workerData as { kubeconfig: string; namespace: string };
  void bareWorker(kubeconfig, namespace);
}

/** The bare loop's thread, as the job-robot ServiceAccount. */
class BareLoop {
  private readonly worker: Worker;
  constructor(kubeconfig: string, namespace: string) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { role: 'bare-loop', kubeconfig, namespace } });
  }
  run(task: BareTask): Promise<BareTimes> {
    return new Promise((resolve, reject) => {
      this.worker.once('message', (m: { times?: BareTimes; error?: string }) => (m.times ? resolve(m.times) : reject(new Error(`bare loop: ${m.error}`))));
      this.worker.once('error', reject);
      this.worker.postMessage(task);
    });
  }
  async close(): Promise<void> {
    this.worker.postMessage('exit');
    await new Promise((r) => this.worker.once('exit', r));
  }
}

/** Jobs per second between the 10th and the 90th percentile of the times they were seen. */
function sustainedRate(seenAt: number[]): number {
  const sorted = [...seenAt].sort((a, b) => a - b);
  const lo = Math.floor(sorted.length * 0.1);
  const hi = Math.ceil(sorted.length * 0.9) - 1;
  return ((hi - lo) / (sorted[hi]! - sorted[lo]!)) * 1000;
}

interface Bench {
  redis: Redis;
  queue: string;
  pipe: Pipeline;
  ledger: JobLedger;
  bare: BareLoop;
  namespace: string;
  template: V1Job;
  source: string;
  tag: number;
}

/** Waits until the ledger has seen `names` (or items with `markers`) and the job controller has marked each suspended. */
async function settle(b: Bench, count: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = b.ledger.all();
    const quiet = all.every((e) => e.last.status?.conditions?.some((c) => c.type === 'Suspended'));
    if (all.length >= count && quiet) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${all.length} of ${count} Jobs seen, job controller ${quiet ? 'idle' : 'busy'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Maps each newly seen Job to its marker (pipeline items) or name (bare Jobs), with the time it was
 * seen; `eventIds` maps a pipeline item's marker to its event id.
 */
function seenTimes(b: Bench): { byKey: Map<string, number>; eventIds: Map<string, string>; stop: () => void } {
  const byKey = new Map<string, number>();
  const eventIds = new Map<string, string>();
  const stop = b.ledger.onNew((e) => {
    if (e.name.startsWith('bare-')) byKey.set(e.name, e.seenAt);
    else {
      const item = deliveredItem(e.job);
      const marker = item ? (JSON.parse(item.bytes.toString('utf8')) as { m?: string }).m : undefined;
      if (marker) {
        byKey.set(marker, e.seenAt);
        eventIds.set(marker, e.eventId);
      }
    }
  });
  return { byKey, eventIds, stop };
}

/**
 * Notes when each item's result record first appears in Redis (the results function recorded its
 * Job as created), polling every few milliseconds; resolves once all `count` are there.
 */
async function recordedTimes(b: Bench, eventIds: Map<string, string>, count: number, timeoutMs = 120_000): Promise<Map<string, number>> {
  const at = new Map<string, number>();
  const deadline = Date.now() + timeoutMs;
  while (at.size < count) {
    if (Date.now() > deadline) throw new Error(`timed out: ${at.size} of ${count} results recorded`);
    const waiting = [...eventIds].filter(([m]) => !at.has(m));
    if (waiting.length) {
      const p = b.redis.pipeline();
      for (const [, id] of waiting) p.exists(b.pipe.keys.result(id));
      const replies = (await p.exec()) ?? [];
      const t = now();
      waiting.forEach(([m], i) => void (replies[i]?.[1] === 1 && at.set(m, t)));
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return at;
}

async function pipelineLatency(b: Bench, round: number): Promise<{ created: number[]; recorded: number[] }> {
  const seen = seenTimes(b);
  const pushedAt = new Map<string, number>();
  const pushes: Promise<unknown>[] = [];
  const recorded = recordedTimes(b, seen.eventIds, LATENCY_ITEMS);
  const t0 = now() + 100;
  for (let i = 0; i < LATENCY_ITEMS; i++) {
    await sleepUntil(t0 + (i * 1000) / RATE);
    const m = `lat-${round}-${i}`;
    pushedAt.set(m, now());
    pushes.push(b.redis.lpush(b.queue, JSON.stringify({ m })));
  }
  await Promise.all(pushes);
  await settle(b, b.ledger.entries.size + (LATENCY_ITEMS - seen.byKey.size));
  const recordedAt = await recorded;
  seen.stop();
  return {
    created: [...pushedAt].map(([m, at]) => seen.byKey.get(m)! - at),
    recorded: [...pushedAt].map(([m, at]) => recordedAt.get(m)! - at),
  };
}

async function bareLatency(b: Bench, round: number): Promise<{ call: number[]; seen: number[] }> {
  const seen = seenTimes(b);
  const bodies = Array.from({ length: LATENCY_ITEMS }, (_, i) => jobFor(b.template, b.source, `bare-lat-${b.tag++}`, { m: `bare-lat-${round}-${i}` }));
  const times = await b.bare.run({ kind: 'steady', bodies, rate: RATE });
  await settle(b, b.ledger.entries.size + (LATENCY_ITEMS - seen.byKey.size));
  seen.stop();
  return { call: times.map(([, , ms]) => ms), seen: times.map(([name, at]) => seen.byKey.get(name)! - at) };
}

/** CPU time (user + system) a process has used, in ms; NaN where /proc is not there. */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in USER_HZ (100 a second)
  } catch {
    return NaN;
  }
}

/** CPU used by the launcher and the bridge during the pipeline's throughput runs. */
const pipelineCpu = { launcherMs: 0, bridgeMs: 0, resultsMs: 0, adapterMs: 0, items: 0 };

/** Restarts the bridge with `concurrency` sends in flight, unless it already runs with it. */
async function bridgeConcurrency(b: Bench, concurrency: number): Promise<void> {
  if (b.pipe.bridge.env['CONCURRENCY'] === String(concurrency) && b.pipe.bridge.alive) return;
  await b.pipe.bridge.terminate();
  b.pipe.bridge.env = { ...b.pipe.bridge.env, CONCURRENCY: String(concurrency) };
  b.pipe.bridge.start();
  await b.pipe.bridge.ready();
}

/**
 * Results on or off for the next runs: the ApiServerSource adapter that feeds the results function
 * is stopped or started again (a restarted adapter sends nothing for Jobs that already exist).
 */
async function resultsOn(b: Bench, on: boolean): Promise<void> {
  const watch = b.pipe.jobWatch!;
  if (on === watch.running()) return;
  if (on) await watch.restart();
  else await watch.kill('SIGTERM');
}

async function pipelineThroughput(b: Bench, round: number, concurrency: number, results = true): Promise<number> {
  await bridgeConcurrency(b, concurrency);
  await resultsOn(b, results);
  const seen = seenTimes(b);
  const items = Array.from({ length: THROUGHPUT_ITEMS }, (_, i) => JSON.stringify({ m: `tp-${round}-${concurrency}-${results ? 'r' : 'n'}-${i}` }));
  const cpu0 = { launcher: cpuMs(b.pipe.launcher.pid), bridge: cpuMs(b.pipe.bridge.pid), results: cpuMs(b.pipe.results!.pid), adapter: cpuMs(b.pipe.jobWatch!.pid()) };
  const p = b.redis.pipeline();
  for (let i = 0; i < items.length; i += 500) p.lpush(b.queue, ...items.slice(i, i + 500));
  await p.exec();
  await settle(b, b.ledger.entries.size + (THROUGHPUT_ITEMS - seen.byKey.size), 300_000);
  seen.stop();
  if (results) {
    pipelineCpu.launcherMs += cpuMs(b.pipe.launcher.pid) - cpu0.launcher;
    pipelineCpu.bridgeMs += cpuMs(b.pipe.bridge.pid) - cpu0.bridge;
    pipelineCpu.resultsMs += cpuMs(b.pipe.results!.pid) - cpu0.results;
    pipelineCpu.adapterMs += cpuMs(b.pipe.jobWatch!.pid()) - cpu0.adapter;
    pipelineCpu.items += THROUGHPUT_ITEMS;
  }
  return sustainedRate([...seen.byKey.values()]);
}

async function bareThroughput(b: Bench, concurrency: number): Promise<number> {
  const seen = seenTimes(b);
  const bodies = Array.from({ length: THROUGHPUT_ITEMS }, (_, i) => jobFor(b.template, b.source, `bare-tp-${b.tag++}`, { m: `bare-tp-${i}` }));
  await b.bare.run({ kind: 'closed', bodies, concurrency });
  await settle(b, b.ledger.entries.size + (THROUGHPUT_ITEMS - seen.byKey.size), 300_000);
  seen.stop();
  return sustainedRate([...seen.byKey.values()]);
}

const median = (xs: number[]) => percentile(xs, 50);

export async function main(): Promise<void> {
  const cp = await startControlPlane();
  process.env['JOB_ROBOT_TEST_KUBECONFIG'] = cp.kubeconfig;
  const server = await startRedis();
  const redis = new Redis(server.url);
  let pipe: Pipeline | undefined;
  let ledger: JobLedger | undefined;
  let bare: BareLoop | undefined;
  try {
    const admin = adminConfig();
    const namespace = await createNamespace(admin, 'bench-pipeline');
    const template = structuredClone(DEFAULT_TEMPLATE);
    template.spec!.suspend = true;
    const queue = 'bench:queue';
    pipe = await startPipeline({
      admin,
      namespace,
      redisUrl: server.url,
      queue,
      template,
      launcherEnv: { MAX_ACTIVE_JOBS: '0', LOG_LEVEL: 'warn' },
      bridgeEnv: { CONCURRENCY: String(CONCURRENCY), LOG_LEVEL: 'warn' },
      reaper: false,
      kubelet: false,
      results: true,
      resultsEnv: { LOG_LEVEL: 'warn' },
    });
    // The bare loop acts as the same ServiceAccount the launcher runs as (the same kubeconfig file).
    bare = new BareLoop(pipe.robotKubeconfig, namespace);
    ledger = new JobLedger(admin, namespace);
    await ledger.start();
    const b: Bench = { redis, queue, pipe, ledger, bare, namespace, template, source: pipe.source, tag: 0 };

    // Warm both paths (connections, JIT) before measuring.
    await redis.lpush(queue, ...Array.from({ length: 100 }, (_, i) => JSON.stringify({ m: `warm-${i}` })));
    await bare.run({ kind: 'closed', bodies: Array.from({ length: 100 }, (_, i) => jobFor(template, b.source, `bare-warm-${i}`, { m: i })), concurrency: 8 });
    await settle(b, 200);

    const lat = { pipeline: [] as number[], recorded: [] as number[], bareCall: [] as number[], bareSeen: [] as number[] };
    for (let round = 0; round < 2; round++) {
      const runPipeline = async () => {
        const r = await pipelineLatency(b, round);
        lat.pipeline.push(...r.created);
        lat.recorded.push(...r.recorded);
      };
      const runBare = async () => {
        const r = await bareLatency(b, round);
        lat.bareCall.push(...r.call);
        lat.bareSeen.push(...r.seen);
      };
      if (round % 2 === 0) await runBare().then(runPipeline);
      else await runPipeline().then(runBare);
    }

    // Each side at CONCURRENCY and at twice it; the better of the two counts.
    // Results on (as shipped), and the pipeline at 2 × CONCURRENCY with results off, to show what recording them costs.
    const tp = { pipeline: [] as number[], pipelineDouble: [] as number[], pipelineNoResults: [] as number[], bare: [] as number[], bareDouble: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      const runs: Array<() => Promise<void>> = [
        async () => void tp.bare.push(await bareThroughput(b, CONCURRENCY)),
        async () => void tp.bareDouble.push(await bareThroughput(b, 2 * CONCURRENCY)),
        async () => void tp.pipeline.push(await pipelineThroughput(b, round, CONCURRENCY)),
        async () => void tp.pipelineDouble.push(await pipelineThroughput(b, round, 2 * CONCURRENCY)),
        async () => void tp.pipelineNoResults.push(await pipelineThroughput(b, round, 2 * CONCURRENCY, false)),
      ];
      for (const run of round % 2 === 0 ? runs : [...runs].reverse()) await run();
    }

    const stats = (xs: number[]) => ({ p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: Math.max(...xs) });
    const pl = stats(lat.pipeline);
    const pr = stats(lat.recorded);
    const bc = stats(lat.bareCall);
    const bs = stats(lat.bareSeen);
    printTable(`Latency at a steady ${RATE} items/s (${lat.pipeline.length} items per mode, ms)`, [
      { path: 'pipeline: LPUSH → Job seen by a watch', ...pl },
      { path: 'pipeline: LPUSH → result recorded in Redis (created)', ...pr },
      { path: 'bare: create call, pooled', ...bc },
      { path: 'bare: call start → Job seen by a watch', ...bs },
    ]);
    const pipelineRate = Math.max(median(tp.pipeline), median(tp.pipelineDouble));
    const bareRate = Math.max(median(tp.bare), median(tp.bareDouble));
    const rows: Row[] = [
      { path: `pipeline, bridge CONCURRENCY=${CONCURRENCY}`, 'items/s (median)': median(tp.pipeline), rounds: tp.pipeline.map((r) => r.toFixed(0)).join(' ') },
      { path: `pipeline, bridge CONCURRENCY=${2 * CONCURRENCY}`, 'items/s (median)': median(tp.pipelineDouble), rounds: tp.pipelineDouble.map((r) => r.toFixed(0)).join(' ') },
      { path: `pipeline, bridge CONCURRENCY=${2 * CONCURRENCY}, results off`, 'items/s (median)': median(tp.pipelineNoResults), rounds: tp.pipelineNoResults.map((r) => r.toFixed(0)).join(' ') },
      { path: `bare loop, ${CONCURRENCY} in flight`, 'items/s (median)': median(tp.bare), rounds: tp.bare.map((r) => r.toFixed(0)).join(' ') },
      { path: `bare loop, ${2 * CONCURRENCY} in flight`, 'items/s (median)': median(tp.bareDouble), rounds: tp.bareDouble.map((r) => r.toFixed(0)).join(' ') },
    ];
    printTable(`Maximum sustained throughput (${THROUGHPUT_ITEMS} items per run, Jobs/s from the 10th to the 90th percentile)`, rows);
    const throughputRatio = pipelineRate / bareRate;
    const noResultsRatio = median(tp.pipelineNoResults) / bareRate;
    const latencyRatio = pl.p50 / bc.p50;
    const perItem = { launcher: pipelineCpu.launcherMs / pipelineCpu.items, bridge: pipelineCpu.bridgeMs / pipelineCpu.items, results: pipelineCpu.resultsMs / pipelineCpu.items, adapter: pipelineCpu.adapterMs / pipelineCpu.items };
    printTable(`CPU per item in the pipeline's throughput runs (${cpus().length} CPUs shared with the API server and etcd)`, [
      { process: 'launcher', 'CPU ms/item': perItem.launcher },
      { process: 'bridge', 'CPU ms/item': perItem.bridge },
      { process: 'results function', 'CPU ms/item': perItem.results },
      { process: "Knative's ApiServerSource adapter", 'CPU ms/item': perItem.adapter },
    ]);
    printTable('Ratios', [
      { figure: 'sustained throughput, pipeline / bare', value: throughputRatio, target: '>= 0.7', met: throughputRatio >= 0.7 ? 'yes' : 'NO' },
      { figure: 'p50 push-to-created / bare create p50', value: latencyRatio, target: '<= 3', met: latencyRatio <= 3 ? 'yes' : 'NO' },
      {
        figure: `sustained throughput at ${2 * CONCURRENCY}, results on / results off`,
        value: median(tp.pipelineDouble) / median(tp.pipelineNoResults),
        target: '>= 1 (within noise)',
        met: median(tp.pipelineDouble) >= 0.95 * median(tp.pipelineNoResults) ? 'yes' : 'NO',
      },
    ]);
    process.stdout.write(
      `\nFor comparison: KEDA's ScaledJob polls its scaler every ${KEDA_POLL_S} s by default (pollingInterval), so an item waits ` +
        `${KEDA_POLL_S / 2} s on average, up to ${KEDA_POLL_S} s, before a Job is even considered; here the p50 from push to Job ` +
        `created is ${pl.p50.toFixed(1)} ms (p99 ${pl.p99.toFixed(1)} ms).\n`,
    );

    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(
      LATENCY_SAMPLES,
      `${JSON.stringify({ rate: RATE, unit: 'ms', pipeline: lat.pipeline, bareCall: lat.bareCall, bareSeen: lat.bareSeen, kedaPollSeconds: KEDA_POLL_S })}\n`,
    );
    process.stdout.write(`Latency samples: ${LATENCY_SAMPLES}\n`);

    printResult('pipeline', throughputRatio, {
      throughput_ratio: throughputRatio,
      throughput_ratio_results_off: noResultsRatio,
      [`pipeline_c${2 * CONCURRENCY}_results_off_items_per_s`]: median(tp.pipelineNoResults),
      results_cpu_ms_per_item: perItem.results,
      adapter_cpu_ms_per_item: perItem.adapter,
      push_to_result_p50_ms: pr.p50,
      push_to_result_p99_ms: pr.p99,
      latency_p50_ratio: latencyRatio,
      throughput_target_met: throughputRatio >= 0.7,
      latency_target_met: latencyRatio <= 3,
      pipeline_items_per_s: pipelineRate,
      bare_items_per_s: bareRate,
      [`pipeline_c${CONCURRENCY}_items_per_s`]: median(tp.pipeline),
      [`pipeline_c${2 * CONCURRENCY}_items_per_s`]: median(tp.pipelineDouble),
      [`bare_c${CONCURRENCY}_items_per_s`]: median(tp.bare),
      [`bare_c${2 * CONCURRENCY}_items_per_s`]: median(tp.bareDouble),
      launcher_cpu_ms_per_item: perItem.launcher,
      bridge_cpu_ms_per_item: perItem.bridge,
      pipeline_p50_ms: pl.p50,
      pipeline_p99_ms: pl.p99,
      bare_p50_ms: bc.p50,
      bare_p99_ms: bc.p99,
      bare_seen_p50_ms: bs.p50,
      bare_seen_p99_ms: bs.p99,
      steady_rate_per_s: RATE,
      latency_items: lat.pipeline.length,
      throughput_items: THROUGHPUT_ITEMS,
      rounds: ROUNDS,
      concurrency: CONCURRENCY,
      keda_default_poll_s: KEDA_POLL_S,
      cpus: cpus().length,
    });
  } finally {
    await bare?.close();
    await ledger?.stop();
    await pipe?.stop().catch(() => undefined);
    await Component.killAll();
    redis.disconnect();
    await server.stop();
    await cp.stop();
  }
}
