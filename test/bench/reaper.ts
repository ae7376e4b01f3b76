/**
 * `npm run bench -- reaper`: reaping N finished Jobs (default 1,000) with the reaper, against the
 * naive approach a hand-written script takes (list everything at once, delete one by one in
 * sequence), in one run against the same private API server, with the same population each time.
 *
 * - Population: Jobs with job-robot's labels, created suspended (so no pods) and finished through the
 *   jobs/status subresource two days ago, 3 of 4 Complete, 1 of 4 Failed (test/helpers/finished.ts).
 *   The real job controller leaves finished Jobs alone: it creates no pods and changes no status.
 *   Every approach deletes all of them (the reaper with REAPER_FAILED_KEEP=0, otherwise its defaults).
 * - Approaches, each in its own Node process (fresh heap, `--expose-gc`), acting as job-robot:
 *     reaper        `job-robot reap` as configured by default: pages of 500, 10 deletes in flight,
 *                   a deadline on every call and one reused connection pool (kube/rest.ts);
 *     naive         the script: @kubernetes/client-node as it comes (a new TLS connection per call),
 *                   one list of everything, sequential deletes (Background propagation);
 *     naive-pooled  the same script with one reused connection pool, isolating what paging and
 *                   bounded concurrency alone are worth, written twice: through client-node
 *                   (call-options.ts: its typed models, undici) and through kube/rest.ts (plain
 *                   JSON, the reaper's own client; `naive-pooled-rest`). The faster of the two by
 *                   median is the pooled baseline, so the reaper's client earns it nothing;
 *     reaper-checked the reaper given the bridge's Redis (a private redis-server), as config/ runs
 *                   it: every Job carries the queue's event source, so each expired one is checked
 *                   for a queue item still in flight (none is), and its result recorded in Redis
 *                   (none is yet: the backstop writes every one), before it is deleted.
 *   The headline ratio is naive / reaper; pooled / reaper and reaper-checked / reaper (what the
 *   in-flight check and the results backstop cost) are reported beside it.
 * - Rounds rotate which approach goes first; ratios compare medians.
 * - Memory: each run forces a GC every 500 ms and records the largest heap left after it (the live
 *   heap: what the approach holds, garbage excluded) and the peak RSS, both as growth over the
 *   baseline taken before the run. A second phase reaps BENCH_REAPER_SCALE Jobs (default 5,000; 0
 *   skips) with the reaper and the pooled baseline: the reaper's live heap stays flat, the one-list
 *   script's grows with the namespace.
 *
 * Env: BENCH_REAPER_JOBS (1000), BENCH_REAPER_ROUNDS (3), BENCH_REAPER_SCALE (5000).
 * Everything (API server, etcd, controllers, the approach) shares this machine's cores, so the
 * figures move with its load; the JSON records the load average.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchV1Api, KubeConfig, type V1Job } from '@kubernetes/client-node';
import { CallOptions } from '../../function/kube/call-options.ts';
import { restOf } from '../../function/kube/client.ts';
import { listJobs, deleteJob, restJobs } from '../../function/kube/jobs-api.ts';
import { ownerLabels, ownerSelector } from '../../function/kube/labels.ts';
import { loadReaperConfig } from '../../function/reaper/config.ts';
import { QueueInFlight } from '../../function/reaper/in-flight.ts';
import { QueueResults } from '../../function/reaper/results.ts';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION } from '../../function/kube/labels.ts';
import { Reaper } from '../../function/reaper/reap.ts';
import { startControlPlane } from '../cluster/control-plane.ts';
import { kubernetesVersion } from '../cluster/versions.ts';
import { createFinishedJob, inParallel } from '../helpers/finished.ts';
import { applyManifests, createNamespace, eventually, serviceAccountConfig } from '../helpers/kube.ts';
import { readRepoFile } from '../helpers/paths.ts';
import { startRedis } from '../helpers/redis.ts';
import { percentile, printResult, printTable, type Row } from './report.ts';

const APPROACHES = ['reaper', 'naive', 'naive-pooled', 'naive-pooled-rest', 'reaper-checked'] as const;
/** The two ways of writing the pooled script; the faster is the pooled baseline. */
const POOLED = ['naive-pooled', 'naive-pooled-rest'] as const;
type Approach = (typeof APPROACHES)[number];

interface Measured {
  approach: Approach;
  ms: number;
  examined: number;
  deleted: number;
  errors: number;
  /** Largest heapUsed right after a forced GC, over the baseline: the live heap. */
  heapGrowthMiB: number;
  rssGrowthMiB: number;
  cpuMs: number;
}

const MiB = 1024 * 1024;
const H = 3_600_000;
const num = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer`);
  return v;
};

/** The reaper's configuration variables as `job-robot reap` reads them (no OIDC: it serves no HTTP). */
const reapEnv = (env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv => ({ ...env, OIDC_AUTHENTICATION: 'disabled' });

// ---------------------------------------------------------------------------------------------
// Child: one approach, measured in a fresh process.

type Counts = Pick<Measured, 'examined' | 'deleted' | 'errors'>;

/** Past the naive script's retention: a Complete Job after an hour, a Failed one after a day. */
function expired(job: V1Job): boolean {
  const done = job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  if (!done?.lastTransitionTime) return false;
  const maxAge = done.type === 'Complete' ? H : 24 * H;
  return Date.now() - new Date(done.lastTransitionTime).getTime() >= maxAge;
}

/** How the naive script reaches the API server: one list, and a delete by name. */
interface NaiveCalls {
  list(): Promise<V1Job[]>;
  delete(name: string): Promise<unknown>;
  close(): unknown;
}

/** The script through @kubernetes/client-node: as it comes (a new TLS connection per call), or `pooled` through call-options.ts. */
function clientNodeCalls(kc: KubeConfig, namespace: string, pooled: boolean): NaiveCalls {
  const batch = kc.makeApiClient(BatchV1Api);
  const calls = pooled ? new CallOptions(60_000) : undefined;
  return {
    list: async () => (await batch.listNamespacedJob({ namespace, labelSelector: ownerSelector() }, calls?.call())).items,
    delete: (name) => batch.deleteNamespacedJob({ name, namespace, body: { propagationPolicy: 'Background' } }, calls?.call()),
    close: () => calls?.close(),
  };
}

/** The script through kube/rest.ts: one pool, answers parsed as plain JSON. */
function restCalls(kc: KubeConfig, namespace: string): NaiveCalls {
  const rest = restOf(kc, 60_000);
  return {
    list: async () => (await listJobs(rest, namespace, { labelSelector: ownerSelector() })).items,
    delete: (name) => deleteJob(rest, namespace, name, { propagationPolicy: 'Background' }),
    close: () => rest.close(),
  };
}

/** The hand-written script: one list of everything, then a delete per finished, expired Job, one at a time. */
async function naive(calls: NaiveCalls): Promise<Counts> {
  const items = await calls.list();
  let deleted = 0;
  let errors = 0;
  for (const job of items) {
    if (!expired(job)) continue;
    try {
      await calls.delete(job.metadata!.name!);
      deleted++;
    } catch {
      errors++;
    }
  }
  await calls.close();
  return { examined: items.length, deleted, errors };
}

/** The reaper exactly as `job-robot reap` builds it from the environment (with Redis: the in-flight check and the results backstop). */
async function reaper(kc: KubeConfig, namespace: string): Promise<Counts> {
  // As `job-robot reap` loads it: the command serves no HTTP, so it has no callers to authenticate.
  const config = loadReaperConfig(reapEnv());
  const rest = restOf(kc, config.kubeTimeoutSeconds * 1000);
  const queue = config.queue;
  const inFlight = queue ? new QueueInFlight(queue) : undefined;
  const results = queue && inFlight ? new QueueResults(queue, config.results, {}, inFlight.client) : undefined;
  const r = new Reaper(restJobs(rest), {
    namespace,
    policy: config.policy,
    concurrency: config.concurrency,
    pageSize: config.pageSize,
    ...(inFlight ? { inFlight } : {}),
    ...(results ? { results } : {}),
  });
  const s = await r.run();
  rest.close();
  await Promise.all([inFlight?.close(), results?.close()]);
  if (inFlight && s.kept['in-flight'] + s.kept['in-flight-unknown'] > 0) throw new Error(`the in-flight check kept ${JSON.stringify(s.kept)}`);
  return { examined: s.examined, deleted: s.deleted, errors: s.errors };
}

async function child(approach: Approach): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(process.env['KUBECONFIG']!);
  const namespace = process.env['NAMESPACE']!;
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  gc();
  const base = process.memoryUsage();
  let peakHeap = base.heapUsed;
  let peakRss = base.rss;
  const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage.rss()));
  const sampleHeap = () => {
    gc();
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  };
  const timers = [setInterval(sampleRss, 10), setInterval(sampleHeap, 500)];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const counts =
    approach === 'reaper' || approach === 'reaper-checked'
      ? await reaper(kc, namespace)
      : await naive(approach === 'naive-pooled-rest' ? restCalls(kc, namespace) : clientNodeCalls(kc, namespace, approach === 'naive-pooled'));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  for (const t of timers) clearInterval(t);
  const out: Measured = {
    approach,
    ms,
    ...counts,
    heapGrowthMiB: (peakHeap - base.heapUsed) / MiB,
    rssGrowthMiB: (peakRss - base.rss) / MiB,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.env['REAPER_BENCH_CHILD']) {
  await child(process.env['REAPER_BENCH_CHILD'] as Approach);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Parent: the control plane, the populations, the rounds, the report.

function runChild(approach: Approach, env: Record<string, string>): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', import.meta.filename], {
      env: { ...process.env, ...env, REAPER_BENCH_CHILD: approach },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${approach} exited with ${code}: ${stdout}`));
      resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Measured);
    });
  });
}

const log = (msg: string) => process.stderr.write(`[bench reaper] ${msg}\n`);

export async function main(): Promise<void> {
  const jobs = num('BENCH_REAPER_JOBS', 1000);
  const rounds = Math.max(1, num('BENCH_REAPER_ROUNDS', 3));
  const scale = num('BENCH_REAPER_SCALE', 5000);
  const load0 = loadavg()[0]!;
  const cp = await startControlPlane();
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-bench-reaper-'));
  const setup = new CallOptions(60_000);
  try {
    const admin = new KubeConfig();
    admin.loadFromFile(cp.kubeconfig);
    const namespace = await createNamespace(admin, 'bench-reaper');
    await applyManifests(admin, readRepoFile('config/rbac.yaml'), namespace);
    const robot = await serviceAccountConfig(admin, namespace, 'job-robot', 3 * 3600);
    const kubeconfig = join(dir, 'job-robot.kubeconfig');
    writeFileSync(kubeconfig, robot.exportConfig(), { mode: 0o600 });
    const env = { KUBECONFIG: kubeconfig, NAMESPACE: namespace, REAPER_FAILED_KEEP: '0', LOG_LEVEL: 'silent' };
    // reaper-checked only: the bridge's queue, whose event source every Job of the population carries.
    const queueEnv = { REDIS_URL: redis.url, QUEUE_KEY: 'bench:queue' };
    const source = loadReaperConfig(reapEnv(queueEnv)).queue!.source;
    const envOf = (approach: Approach) => (approach === 'reaper-checked' ? { ...env, ...queueEnv } : env);
    const batch = admin.makeApiClient(BatchV1Api);
    const owned = async () => (await batch.listNamespacedJob({ namespace, labelSelector: ownerSelector() }, setup.call())).items.length;

    let generation = 0;
    const populate = async (n: number) => {
      const g = generation++;
      const t0 = performance.now();
      const finishedAt = (i: number) => new Date(Date.now() - 48 * H - i * 1000);
      await inParallel([...Array(n).keys()], 16, (i) =>
        createFinishedJob(admin, namespace, `g${g}-${i}`, i % 4 === 3 ? 'Failed' : 'Complete', finishedAt(i), ownerLabels(), setup, {
          [EVENT_ID_ANNOTATION]: `g${g}-${i}`,
          [EVENT_SOURCE_ANNOTATION]: source,
        }),
      );
      const count = await owned();
      if (count !== n) throw new Error(`expected ${n} owned Jobs, found ${count}`);
      log(`${n} finished Jobs created in ${Math.round(performance.now() - t0)} ms`);
    };
    const emptied = () => eventually(async () => (await owned()) === 0, 60_000, 'every owned Job to be gone');
    const reap = async (approach: Approach, n: number) => {
      await populate(n);
      const m = await runChild(approach, envOf(approach));
      await emptied();
      if (m.deleted !== n || m.errors) throw new Error(`${approach} deleted ${m.deleted} of ${n} with ${m.errors} errors`);
      log(`${approach}: ${n} Jobs in ${Math.round(m.ms)} ms, live heap +${m.heapGrowthMiB.toFixed(1)} MiB`);
      return m;
    };

    const real: Array<Measured & { round: number }> = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...APPROACHES].reverse() : [...APPROACHES];
      for (const approach of order) real.push({ ...(await reap(approach, jobs)), round: round + 1 });
    }
    const median = (a: Approach, f: (m: Measured) => number) => percentile(real.filter((m) => m.approach === a).map(f), 50);
    const ms = (a: Approach) => median(a, (m) => m.ms);
    // The pooled baseline: whichever way of writing the pooled script was faster.
    const pooled = POOLED.reduce((best, a) => (ms(a) < ms(best) ? a : best));
    log(`pooled baseline: ${pooled} (client-node ${Math.round(ms('naive-pooled'))} ms, kube/rest.ts ${Math.round(ms('naive-pooled-rest'))} ms)`);
    const atScale: Measured[] = [];
    if (scale) for (const approach of ['reaper', pooled] as const) atScale.push(await reap(approach, scale));

    const ratio = ms('naive') / ms('reaper');
    const sameClient = ms(pooled) / ms('reaper');
    const checkCost = ms('reaper-checked') / ms('reaper');
    const config = loadReaperConfig(reapEnv({}));

    printTable(
      `reaper vs naive: ${jobs} finished Jobs, ${rounds} round(s), one kube-apiserver ${kubernetesVersion}, ${cpus().length} CPUs shared by everything (reaper: concurrency ${config.concurrency}, page ${config.pageSize})`,
      real.map(
        (m): Row => ({
          round: m.round,
          approach: m.approach,
          deleted: m.deleted,
          ms: m.ms,
          'jobs/s': (m.deleted / m.ms) * 1000,
          'client cpu ms': m.cpuMs,
          'live heap growth MiB': m.heapGrowthMiB,
          'rss growth MiB': m.rssGrowthMiB,
        }),
      ),
    );
    const byApproach = (a: Approach) => real.filter((m) => m.approach === a);
    printTable(
      'memory by namespace size (live heap: largest heap after a forced GC every 500 ms; medians at the small size)',
      (['reaper', pooled] as const).flatMap((a): Row[] => [
        { approach: a, jobs, 'live heap growth MiB': median(a, (m) => m.heapGrowthMiB), 'rss growth MiB': median(a, (m) => m.rssGrowthMiB), runs: byApproach(a).length },
        ...atScale.filter((m) => m.approach === a).map((m): Row => ({ approach: a, jobs: scale, 'live heap growth MiB': m.heapGrowthMiB, 'rss growth MiB': m.rssGrowthMiB, runs: 1 })),
      ]),
    );
    process.stdout.write(
      `\nratio naive / reaper (medians): ${ratio.toFixed(2)}x (target >= 3x); pooled (${pooled}) / reaper: ${sameClient.toFixed(2)}x; reaper with the in-flight check and the results backstop / without: ${checkCost.toFixed(2)}x\n`,
    );

    const atScaleOf = (a: Approach, f: (m: Measured) => number) => {
      const m = atScale.find((x) => x.approach === a);
      return m ? f(m) : -1;
    };
    printResult('reaper', ratio, {
      ratio_same_client: sameClient,
      in_flight_check_cost: checkCost,
      reaper_checked_ms: ms('reaper-checked'),
      target_met: ratio >= 3,
      jobs,
      rounds,
      cpus: cpus().length,
      reaper_ms: ms('reaper'),
      naive_ms: ms('naive'),
      naive_pooled_ms: ms(pooled),
      pooled_baseline: pooled,
      naive_pooled_client_node_ms: ms('naive-pooled'),
      naive_pooled_rest_ms: ms('naive-pooled-rest'),
      reaper_jobs_per_s: (jobs / ms('reaper')) * 1000,
      naive_jobs_per_s: (jobs / ms('naive')) * 1000,
      naive_pooled_jobs_per_s: (jobs / ms(pooled)) * 1000,
      reaper_live_heap_mib: median('reaper', (m) => m.heapGrowthMiB),
      naive_live_heap_mib: median('naive', (m) => m.heapGrowthMiB),
      naive_pooled_live_heap_mib: median(pooled, (m) => m.heapGrowthMiB),
      reaper_rss_growth_mib: median('reaper', (m) => m.rssGrowthMiB),
      naive_rss_growth_mib: median('naive', (m) => m.rssGrowthMiB),
      naive_pooled_rss_growth_mib: median(pooled, (m) => m.rssGrowthMiB),
      reaper_client_cpu_ms: median('reaper', (m) => m.cpuMs),
      naive_client_cpu_ms: median('naive', (m) => m.cpuMs),
      naive_pooled_client_cpu_ms: median(pooled, (m) => m.cpuMs),
      concurrency: config.concurrency,
      page_size: config.pageSize,
      scale_jobs: scale,
      scale_reaper_ms: atScaleOf('reaper', (m) => m.ms),
      scale_naive_pooled_ms: atScaleOf(pooled, (m) => m.ms),
      scale_reaper_live_heap_mib: atScaleOf('reaper', (m) => m.heapGrowthMiB),
      scale_naive_pooled_live_heap_mib: atScaleOf(pooled, (m) => m.heapGrowthMiB),
      scale_reaper_rss_growth_mib: atScaleOf('reaper', (m) => m.rssGrowthMiB),
      scale_naive_pooled_rss_growth_mib: atScaleOf(pooled, (m) => m.rssGrowthMiB),
      load_1m_start: load0,
      load_1m_end: loadavg()[0]!,
    });
  } finally {
    await setup.close();
    await Promise.all([cp.stop(), redis.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}
