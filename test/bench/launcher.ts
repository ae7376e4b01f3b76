/**
 * `npm run bench -- launcher`: the launcher against a bare create loop with one connection pool,
 * one run, one private control plane. The launcher is what the image runs (./shipped.ts): built here by
 * `npm run build`'s bundler, started with the Dockerfile's ENTRYPOINT flags and ENV, with the
 * compile cache the image fills at build time.
 *
 * - Throughput and latency at concurrency 1, 8 and 32: events through the launcher (a child
 *   process, HTTP binary mode, keep-alive) versus the same Job body created directly, as the same
 *   ServiceAccount: with client-node's createNamespacedJob and a connection per call (bare), and
 *   with one connection pool (pooled, the API server's limit), both through client-node and through
 *   kube/rest.ts with the JSON serialized beforehand; the faster of those two in each cell is the
 *   pooled baseline. The headline ratio is launcher/pooled.
 *   Modes alternate in two rounds. The Jobs are suspended so the job controller adds no pod
 *   traffic that would favour whichever mode runs first. The launcher's CPU (utime+stime) per event.
 * - Cold start: process spawn to the first 202, versus spawn to the first 200 of a bare express
 *   hello-world; median of several spawns; with the image's compile cache and without (for both);
 *   and the launcher's start-up phases (JOB_ROBOT_STARTUP_TRACE) from spawn; and container start
 *   to the first 202 through Knative Serving's real queue-proxy (./wake.ts), against the same
 *   hello-world's first 200 behind the same queue-proxy.
 * - RSS of the launcher process when ready (idle) and after 1,000 events.
 * - The peer: Knative Eventing's JobSink receiver (./jobsink.ts) on the same API server with the
 *   same template: Jobs/s, p50/p99, API objects, CPU and RSS per event.
 *
 * The launcher runs as it ships: it verifies every event's Knative OIDC token (a real token of the
 * Trigger's identity, minted through TokenRequest), which the bare loop does not pay for.
 * BENCH_CPU_PROF=<dir>: the throughput launcher writes a V8 CPU profile there.
 *
 * Prints tables; the last line is `{"bench":"launcher","ratio":<min over c of launcher/pooled Jobs/s>,...}`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { CloudEvent } from 'cloudevents';
import { CallOptions } from '../../function/kube/call-options.ts';
import { restOf } from '../../function/kube/client.ts';
import { createJob } from '../../function/kube/jobs-api.ts';
import { eventEnv } from '../../function/launcher/event-env.ts';
import { buildJob } from '../../function/launcher/job.ts';
import { DEFAULT_TEMPLATE } from '../../function/kube/job-template.ts';
import { startControlPlane } from '../cluster/control-plane.ts';
import { freePort } from '../cluster/ports.ts';
import { adminConfig, applyManifests, createNamespace, serviceAccountConfig } from '../helpers/kube.ts';
import { encodeHeaderValue, kubeconfigFile, spawnLauncher, waitReady, type ChildLauncher } from '../helpers/launcher.ts';
import { readRepoFile, ROOT } from '../helpers/paths.ts';
import { mintToken } from '../helpers/tokens.ts';
import { DEFAULT_SENDERS } from '../../function/auth/senders.ts';
import { drive, percentile, printResult, printTable, type Row, type Run } from './report.ts';
import { measureJobSink } from './jobsink.ts';
import { helloWakeSamples, wakeSamples } from './wake.ts';
import { shipped } from './shipped.ts';

const CONCURRENCY = [1, 8, 32];
const EVENTS_PER_RUN = Number(process.env['BENCH_EVENTS'] ?? 300);
const ROUNDS = 2;
const COLD_STARTS = Number(process.env['BENCH_COLD_STARTS'] ?? 5);
const TYPE = 'dev.job-robot.queue.item';

/** The Job the launcher builds for event (source, id): the bare loop sends exactly this body. */
function jobFor(template: V1Job, prefix: string, id: string): V1Job {
  const event = new CloudEvent<unknown>({ id, source: '/bench', type: TYPE, datacontenttype: 'application/json', data: { n: id } });
  return buildJob(template, { prefix, ttlSeconds: 604800, serviceAccount: 'job-robot-job' }, { source: '/bench', id, type: TYPE, env: eventEnv(event, 65536) });
}

/** The Authorization header events carry: the Trigger identity's token for the namespace in use. */
let authorization = '';

/** The token Knative's broker filter would send for the Trigger job-robot-launcher in `namespace`. */
const triggerToken = async (admin: KubeConfig, namespace: string) => `Bearer ${await mintToken(admin, namespace, DEFAULT_SENDERS.launcher[0], AUDIENCE, 3600)}`;
const AUDIENCE = 'job-robot-launcher';

/** One binary-mode event over Node's fetch (keep-alive connection pool). */
function postEvent(url: string, id: string): Promise<number> {
  return fetch(`${url}/`, {
    method: 'POST',
    headers: { authorization, 'ce-specversion': '1.0', 'ce-id': encodeHeaderValue(id), 'ce-source': '/bench', 'ce-type': TYPE, 'content-type': 'application/json' },
    body: JSON.stringify({ n: id }),
  }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });
}

/** CPU time (user + system) a process has used, in ms (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A start-up phase the launcher reported (JOB_ROBOT_STARTUP_TRACE), in ms from spawn. */
type Phases = Record<string, number>;

/**
 * Spawns `args`, polls `probe` every 2 ms until it answers `want`; returns ms from spawn, and the
 * phases the process traced on stderr (ms from spawn; `process-start` is Node's own time origin).
 */
async function coldStart(args: string[], env: Record<string, string>, url: string, probe: () => Promise<number>, want: number): Promise<{ ms: number; phases: Phases }> {
  const t0 = performance.now();
  const spawnedAt = performance.timeOrigin + t0;
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode} before answering ${url}: ${err}`);
      try {
        if ((await probe()) === want) {
          const ms = performance.now() - t0;
          const phases: Phases = {};
          for (const line of err.split('\n')) {
            if (!line.startsWith('{"startupPhase"')) continue;
            const p = JSON.parse(line) as { startupPhase: string; ms: number; cpuMs: number; origin: number };
            phases['process-start'] ??= p.origin - spawnedAt;
            phases[p.startupPhase] = p.origin + p.ms - spawnedAt;
            phases[`${p.startupPhase} (CPU)`] = p.cpuMs;
          }
          phases['first-202-at-client'] = ms;
          return { ms, phases };
        }
      } catch {
        // not listening yet
      }
      if (performance.now() - t0 > 30_000) throw new Error(`${args.join(' ')}: no ${want} within 30 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
  }
}

const median = (xs: number[]) => percentile(xs, 50);

/** The launcher's own report of its V8 heap in use, from /metrics. */
async function heapUsedMb(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^job_robot_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
  return m ? Number(m[1]) / 1048576 : NaN;
}

export async function main(): Promise<void> {
  const image = await shipped();
  const cp = await startControlPlane();
  process.env['JOB_ROBOT_TEST_KUBECONFIG'] = cp.kubeconfig;
  const workDir = mkdtempSync(join(tmpdir(), 'job-robot-bench-'));
  const files: Array<{ remove(): void }> = [image];
  let launcher: ChildLauncher | undefined;
  try {
    const admin = adminConfig();
    const namespace = await createNamespace(admin, 'bench');
    await applyManifests(admin, readRepoFile('config/rbac.yaml'), namespace);
    const robot: KubeConfig = await serviceAccountConfig(admin, namespace, 'job-robot');
    const kcFile = kubeconfigFile(robot);
    files.push(kcFile);
    const template = structuredClone(DEFAULT_TEMPLATE);
    template.spec!.suspend = true;
    const templateFile = join(workDir, 'job.json');
    writeFileSync(templateFile, JSON.stringify(template));
    const env = { KUBECONFIG: kcFile.path, NAMESPACE: namespace, LOG_LEVEL: 'warn', JOB_TEMPLATE_PATH: templateFile, MAX_ACTIVE_JOBS: '1000000', OIDC_AUTHENTICATION: 'enabled', OIDC_AUDIENCE: AUDIENCE };
    authorization = await triggerToken(admin, namespace);

    // Throughput and latency, through what the image runs (LOG_LEVEL as config/launcher.yaml sets it).
    const profDir = process.env['BENCH_CPU_PROF'];
    const args = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, ...image.args] : image.args;
    launcher = await spawnLauncher({ ...image.env, ...env, LOG_LEVEL: 'info' }, { args });
    await waitReady(launcher.url);
    const pid = launcher.child.pid!;
    const rssIdle = rssMb(pid);
    const heapIdle = await heapUsedMb(launcher.url);
    const batch = robot.makeApiClient(BatchV1Api);
    // One connection pool, two ways: client-node with the call options job-robot gives it (what a
    // user's own loop would be), and kube/rest.ts, the launcher's own transport, sending JSON
    // serialized beforehand. The faster of the two in each cell is the pooled baseline.
    const pooled = new CallOptions(10_000);
    const rest = restOf(robot, 10_000);
    // Warm both paths (TLS, JIT) before measuring.
    await drive(40, 8, async (i) => void (await batch.createNamespacedJob({ namespace, body: jobFor(template, 'warm-bare-', `w${i}`) })));
    await drive(40, 8, async (i) => {
      const body = jobFor(template, 'warm-pool-', `w${i}`);
      await batch.createNamespacedJob({ namespace, body }, pooled.call({ body }));
    });
    await drive(40, 8, async (i) => createJob(rest, namespace, JSON.stringify(jobFor(template, 'warm-rest-', `w${i}`))));
    await drive(40, 8, async (i) => void (await postEvent(launcher!.url, `warm-${i}`)));

    const runs = new Map<string, Run[]>();
    const cpu = new Map<number, number>();
    const add = (key: string, run: Run) => runs.set(key, [...(runs.get(key) ?? []), run]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of CONCURRENCY) {
        const tag = `r${round}-c${c}`;
        const bodies = Array.from({ length: EVENTS_PER_RUN }, (_, i) => jobFor(template, `bare-${tag}-`, `${i}`));
        add(`bare-${c}`, await drive(EVENTS_PER_RUN, c, async (i) => void (await batch.createNamespacedJob({ namespace, body: bodies[i]! }))));
        const pooledBodies = Array.from({ length: EVENTS_PER_RUN }, (_, i) => jobFor(template, `pool-${tag}-`, `${i}`));
        add(
          `pooled-${c}`,
          await drive(EVENTS_PER_RUN, c, async (i) => void (await batch.createNamespacedJob({ namespace, body: pooledBodies[i]! }, pooled.call({ body: pooledBodies[i]! })))),
        );
        const restJson = Array.from({ length: EVENTS_PER_RUN }, (_, i) => JSON.stringify(jobFor(template, `rest-${tag}-`, `${i}`)));
        add(`rest-${c}`, await drive(EVENTS_PER_RUN, c, (i) => createJob(rest, namespace, restJson[i]!)));
        const cpuBefore = cpuMs(pid);
        add(
          `launcher-${c}`,
          await drive(EVENTS_PER_RUN, c, async (i) => {
            const status = await postEvent(launcher!.url, `${tag}-${i}`);
            if (status !== 202) throw new Error(`launcher answered ${status}`);
          }),
        );
        cpu.set(c, (cpu.get(c) ?? 0) + cpuMs(pid) - cpuBefore);
      }
    }
    const rows: Row[] = [];
    const figures: Record<string, number> = {};
    const ratios: number[] = [];
    for (const c of CONCURRENCY) {
      const stat = (key: string) => {
        const rs = runs.get(key)!;
        const lat = rs.flatMap((r) => r.latenciesMs);
        return { perSec: lat.length / rs.reduce((s, r) => s + r.seconds, 0), p50: percentile(lat, 50), p99: percentile(lat, 99) };
      };
      const bare = stat(`bare-${c}`);
      const viaClient = stat(`pooled-${c}`);
      const viaRest = stat(`rest-${c}`);
      const pool = viaRest.perSec >= viaClient.perSec ? viaRest : viaClient;
      const via = stat(`launcher-${c}`);
      const ratio = via.perSec / pool.perSec;
      const cpuPerEvent = cpu.get(c)! / (EVENTS_PER_RUN * ROUNDS);
      ratios.push(ratio);
      rows.push({
        concurrency: c,
        'pooled jobs/s': pool.perSec,
        'pooled client-node / rest.ts': `${viaClient.perSec.toFixed(1)} / ${viaRest.perSec.toFixed(1)}`,
        'launcher jobs/s': via.perSec,
        'vs pooled': ratio,
        'pooled p50 ms': pool.p50,
        'launcher p50 ms': via.p50,
        'pooled p99 ms': pool.p99,
        'launcher p99 ms': via.p99,
        'added p99 ms': via.p99 - pool.p99,
        'launcher CPU ms/event': cpuPerEvent,
        'bare jobs/s': bare.perSec,
        'bare p99 ms': bare.p99,
        'vs bare': via.perSec / bare.perSec,
      });
      Object.assign(figures, {
        [`ratio_vs_pooled_c${c}`]: ratio,
        [`pooled_per_s_c${c}`]: pool.perSec,
        [`pooled_client_node_per_s_c${c}`]: viaClient.perSec,
        [`pooled_rest_per_s_c${c}`]: viaRest.perSec,
        [`pooled_p50_ms_c${c}`]: pool.p50,
        [`pooled_p99_ms_c${c}`]: pool.p99,
        [`added_p99_ms_vs_pooled_c${c}`]: via.p99 - pool.p99,
        [`launcher_per_s_c${c}`]: via.perSec,
        [`launcher_p50_ms_c${c}`]: via.p50,
        [`launcher_p99_ms_c${c}`]: via.p99,
        [`launcher_cpu_ms_per_event_c${c}`]: cpuPerEvent,
        [`bare_per_s_c${c}`]: bare.perSec,
        [`bare_p50_ms_c${c}`]: bare.p50,
        [`bare_p99_ms_c${c}`]: bare.p99,
        [`ratio_vs_bare_c${c}`]: via.perSec / bare.perSec,
        [`added_p99_ms_vs_bare_c${c}`]: via.p99 - bare.p99,
      });
    }
    await pooled.close();
    rest.close();
    printTable(
      `launcher vs a bare create loop with one connection pool (pooled: the faster of client-node's createNamespacedJob and kube/rest.ts) and with a connection per call (bare); ${EVENTS_PER_RUN} events x ${ROUNDS} rounds per cell`,
      rows,
    );

    // RSS after 1,000 more events.
    await drive(1000, 8, async (i) => {
      const status = await postEvent(launcher!.url, `rss-${i}`);
      if (status !== 202) throw new Error(`launcher answered ${status}`);
    });
    const rssAfter = rssMb(pid);
    const heapAfter = await heapUsedMb(launcher.url);
    await launcher.stop();
    launcher = undefined;
    Object.assign(figures, { rss_mb_idle: rssIdle, heap_used_mb_idle: heapIdle, rss_mb_after_1000: rssAfter, heap_used_mb_after_1000: heapAfter });

    // The peer users would pick instead: Knative Eventing's JobSink receiver, same API server, same
    // template, right after the launcher's runs (each with the machine to itself).
    const peerNamespace = await createNamespace(admin, 'bench-jobsink');
    const peer = await measureJobSink({ admin, namespace: peerNamespace, template, events: EVENTS_PER_RUN, concurrency: CONCURRENCY });
    const peerRows: Row[] = peer.runs.map((r) => ({
      concurrency: r.concurrency,
      'launcher jobs/s': figures[`launcher_per_s_c${r.concurrency}`]!,
      'JobSink jobs/s': r.jobsPerSecond,
      'launcher / JobSink': figures[`launcher_per_s_c${r.concurrency}`]! / r.jobsPerSecond,
      'launcher p50 ms': figures[`launcher_p50_ms_c${r.concurrency}`]!,
      'JobSink p50 ms': r.p50Ms,
      'launcher p99 ms': figures[`launcher_p99_ms_c${r.concurrency}`]!,
      'JobSink p99 ms': r.p99Ms,
      'launcher CPU ms/event': figures[`launcher_cpu_ms_per_event_c${r.concurrency}`]!,
    }));
    for (const r of peer.runs) Object.assign(figures, { [`jobsink_per_s_c${r.concurrency}`]: r.jobsPerSecond, [`jobsink_p50_ms_c${r.concurrency}`]: r.p50Ms, [`jobsink_p99_ms_c${r.concurrency}`]: r.p99Ms });
    Object.assign(figures, { jobsink_objects_per_event: peer.objectsPerEvent, jobsink_cpu_ms_per_event: peer.cpuMsPerEvent, jobsink_rss_mb_after: peer.rssAfterMb, launcher_objects_per_event: 1 });

    // Cold start: spawn to first 202 versus spawn to first 200 of a bare express hello-world, in a
    // fresh namespace (the first 202 waits for the count of owned Jobs, which grows with them).
    const coldNamespace = await createNamespace(admin, 'bench-cold');
    await applyManifests(admin, readRepoFile('config/rbac.yaml'), coldNamespace);
    const coldKc = kubeconfigFile(await serviceAccountConfig(admin, coldNamespace, 'job-robot'));
    files.push(coldKc);
    const coldEnv = { ...env, KUBECONFIG: coldKc.path, NAMESPACE: coldNamespace, JOB_ROBOT_STARTUP_TRACE: '1' };
    authorization = await triggerToken(admin, coldNamespace);
    const coldRows: Row[] = [];
    const phaseRows: Row[] = [];
    // Every path answers, so the same hello-world passes the queue-proxy's readiness probe below.
    const helloCode = "import express from 'express'; const app = express(); app.use((_q, r) => { r.send('hello'); }); app.listen(Number(process.env.PORT));";
    // The hello-world's compile cache: express loaded once by a process that exits normally (Node writes the cache at exit).
    const helloCache = join(workDir, 'hello-cache');
    spawnSync(process.execPath, ['--input-type=module', '-e', "await import('express')"], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', NODE_COMPILE_CACHE: helloCache } });
    let n = 0;
    for (const cache of [true, false]) {
      const measure = async (what: 'hello' | 'launcher'): Promise<{ ms: number[]; phases: Phases[] }> => {
        const ms: number[] = [];
        const phases: Phases[] = [];
        for (let i = 0; i < COLD_STARTS; i++) {
          const port = await freePort();
          const url = `http://127.0.0.1:${port}`;
          const r =
            what === 'hello'
              ? await coldStart(['--input-type=module', '-e', helloCode], { PORT: String(port), ...(cache ? { NODE_COMPILE_CACHE: helloCache } : {}) }, url, async () => (await fetch(url)).status, 200)
              : await coldStart(
                  [...image.args, 'launcher'],
                  { ...(cache ? image.env : image.envWithoutCache), ...coldEnv, PORT: String(port) },
                  url,
                  () => postEvent(url, `cold-${cache}-${n++}`),
                  202,
                );
          if (i >= 0) {
            ms.push(r.ms);
            phases.push(r.phases);
          }
        }
        return { ms, phases };
      };
      const hello = median((await measure('hello')).ms);
      const started = await measure('launcher');
      const js = median(started.ms);
      const key = cache ? 'cache' : 'nocache';
      coldRows.push({ 'compile cache': cache ? 'on (as the image)' : 'off', 'express hello 200 ms': hello, 'launcher 202 ms': js, ratio: js / hello });
      Object.assign(figures, { [`cold_hello_ms_${key}`]: hello, [`cold_launcher_ms_${key}`]: js, [`cold_ratio_${key}`]: js / hello });
      const names = [...new Set(started.phases.flatMap((p) => Object.keys(p)))].filter((n) => !n.endsWith('(CPU)')).sort((a, b) => median(started.phases.map((p) => p[a] ?? NaN)) - median(started.phases.map((p) => p[b] ?? NaN)));
      const row: Row = { 'compile cache': cache ? 'on' : 'off' };
      for (const name of names) {
        const at = median(started.phases.map((p) => p[name]).filter((x): x is number => x !== undefined));
        row[name] = at;
        figures[`phase_${key}_${name.replace(/[^a-z0-9]+/g, '_')}_ms`] = at;
      }
      phaseRows.push(row);
      // The CPU the launcher had used by each phase: what a quieter machine would wait for.
      const cpuRow: Row = { 'compile cache': cache ? 'on, CPU ms' : 'off, CPU ms' };
      for (const name of names) {
        const used = started.phases.map((p) => p[`${name} (CPU)`]).filter((x): x is number => x !== undefined);
        if (!used.length) continue;
        cpuRow[name] = median(used);
        figures[`phase_cpu_${key}_${name.replace(/[^a-z0-9]+/g, '_')}_ms`] = median(used);
      }
      phaseRows.push(cpuRow);
    }
    // The Knative way: the container starts behind Knative Serving's real queue-proxy, which holds
    // the first event until the launcher's readiness passes (./wake.ts), with sender authentication
    // on and the Trigger's token, as above.
    const flags = image.args.slice(0, -1);
    const wake = await wakeSamples({
      kubeconfigPath: coldKc.path,
      namespace: coldNamespace,
      entry: image.args.at(-1)!,
      env: { ...image.env, ...(flags.length ? { NODE_OPTIONS: flags.join(' ') } : {}), JOB_TEMPLATE_PATH: templateFile, MAX_ACTIVE_JOBS: '1000000', OIDC_AUTHENTICATION: 'enabled', OIDC_AUDIENCE: AUDIENCE },
      authorization,
      samples: COLD_STARTS,
    });
    const wakeMs = median(wake.map((w) => w.firstAnswerMs));
    // The baseline there: the same hello-world behind the same queue-proxy, as any Knative function wakes.
    const helloWake = await helloWakeSamples(coldNamespace, ['--input-type=module', '-e', helloCode], { NODE_COMPILE_CACHE: helloCache }, COLD_STARTS);
    const helloWakeMs = median(helloWake.map((w) => w.firstAnswerMs));
    coldRows.push({ 'compile cache': 'on, both behind the queue-proxy', 'express hello 200 ms': helloWakeMs, 'launcher 202 ms': wakeMs, ratio: wakeMs / helloWakeMs });
    Object.assign(figures, {
      cold_queue_proxy_ready_ms: median(wake.map((w) => w.readyMs)),
      cold_queue_proxy_first_202_ms: wakeMs,
      cold_queue_proxy_hello_ms: helloWakeMs,
      cold_ratio_queue_proxy: wakeMs / helloWakeMs,
      cold_ratio_queue_proxy_vs_direct_hello: wakeMs / figures['cold_hello_ms_cache']!,
    });
    printTable(`cold start of what the image runs (${image.args.join(' ')}): spawn to first answer, median of ${COLD_STARTS}`, coldRows);
    printTable('start-up phases: ms from spawn, and CPU ms the launcher had used by then (medians); the checks run concurrently', phaseRows);
    printTable('memory of what the image runs', [{ 'RSS idle MB': rssIdle, 'RSS after 1,000 events MB': rssAfter, 'V8 heap used idle MB': heapIdle, 'V8 heap used after MB': heapAfter }]);
    printTable(`peer: Knative Eventing's JobSink (${peer.events} events per cell, API client at ${peer.qps} QPS), run after the launcher on the same API server`, peerRows);
    printTable('per event', [
      { receiver: 'launcher', 'API objects': 1, 'CPU ms (c=8)': figures['launcher_cpu_ms_per_event_c8']!, 'RSS after MB': rssAfter },
      { receiver: 'JobSink', 'API objects': peer.objectsPerEvent, 'CPU ms (c=8)': peer.cpuMsPerEvent, 'RSS after MB': peer.rssAfterMb },
    ]);
    process.stdout.write('\n');
    printResult('launcher', Math.min(...ratios), { ...figures, events_per_run: EVENTS_PER_RUN, rounds: ROUNDS, entry: image.args.join(' ') });
  } finally {
    await launcher?.stop();
    for (const f of files) f.remove();
    rmSync(workDir, { recursive: true, force: true });
    await cp.stop();
  }
}
