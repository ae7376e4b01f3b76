/**
 * `npm run bench -- jobsink`: Knative Eventing's own JobSink receiver (cmd/jobsink, v0.49.2), the
 * system users would otherwise pick, on a private control plane with the launcher benchmark's Job
 * template (the built-in pi Job, suspended so that no pods add API traffic).
 *
 * - Jobs/s and p50/p99 latency at concurrency 1, 8 and 32, against a bare createNamespacedJob loop
 *   with a pooled client (the same Job body; as the cluster admin, JobSink as its own
 *   ServiceAccount), alternating at each concurrency;
 * - API objects per event: the Jobs and Secrets carrying the JobSink's label, counted on the API
 *   server after the runs;
 * - JobSink's RSS, and its CPU per event (utime + stime from /proc over the measured runs).
 *
 * JobSink's API client is raised from client-go's default of 5 requests/s (test/helpers/jobsink.ts).
 * `measureJobSink` is what the launcher benchmark calls to put JobSink beside the launcher.
 * Prints a table; the last line is `{"bench":"jobsink","ratio":<min Jobs/s over the bare loop>,...}`.
 */
import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { CallOptions } from '../../function/kube/call-options.ts';
import { DEFAULT_TEMPLATE } from '../../function/kube/job-template.ts';
import { startControlPlane } from '../cluster/control-plane.ts';
import { adminConfig, createNamespace } from '../helpers/kube.ts';
import { countJobSinkObjects, JOBSINK_BURST, JOBSINK_QPS, startJobSink } from '../helpers/jobsink.ts';
import { cpuMs, rssMb } from './process-usage.ts';
import { drive, percentile, printResult, printTable, type Row, type Run } from './report.ts';

const CONCURRENCY = [1, 8, 32];
const EVENTS_PER_RUN = Number(process.env['BENCH_EVENTS'] ?? 300);
const TYPE = 'dev.job-robot.queue.item';

export interface JobSinkBenchInput {
  /** A client with the right to install CRDs and roles (cluster admin). */
  admin: KubeConfig;
  /** Where the JobSink object lives and its Jobs are made. */
  namespace: string;
  /** The Job every event becomes. */
  template: V1Job;
  events?: number;
  concurrency?: number[];
  /**
   * Called before JobSink's run at each concurrency, while JobSink is up: for a caller's own run
   * at the same concurrency (the launcher's, a bare loop's), so that the two alternate.
   */
  beside?: (concurrency: number) => Promise<void>;
}

export interface JobSinkRun {
  concurrency: number;
  jobsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface JobSinkFigures {
  runs: JobSinkRun[];
  events: number;
  /** Jobs and Secrets JobSink created for the measured events, per event. */
  jobsPerEvent: number;
  secretsPerEvent: number;
  objectsPerEvent: number;
  /** Resident memory after the 40 warm-up events, and after the runs. */
  rssWarmMb: number;
  rssAfterMb: number;
  /** utime + stime over the measured runs, per event. */
  cpuMsPerEvent: number;
  qps: number;
  burst: number;
}

/** One binary-mode CloudEvent to JobSink; its answer must be 202. */
async function postEvent(url: string, id: string): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': '/bench', 'ce-type': TYPE, 'content-type': 'application/json' },
    body: JSON.stringify({ n: id }),
  });
  const text = await res.text();
  if (res.status !== 202) throw new Error(`JobSink answered ${res.status} to event ${id}: ${text} ${res.headers.get('reason') ?? ''}`);
}

const summary = (c: number, r: Run): JobSinkRun => ({
  concurrency: c,
  jobsPerSecond: r.latenciesMs.length / r.seconds,
  p50Ms: percentile(r.latenciesMs, 50),
  p99Ms: percentile(r.latenciesMs, 99),
});

/** Starts JobSink in `input.namespace`, drives it at each concurrency, and stops it. */
export async function measureJobSink(input: JobSinkBenchInput): Promise<JobSinkFigures> {
  const events = input.events ?? EVENTS_PER_RUN;
  const name = `bench-${randomUUID().slice(0, 8)}`;
  const sink = await startJobSink(input.admin, { namespace: input.namespace, template: input.template, name });
  try {
    // Warm: connections, the JIT of Go's HTTP and JSON paths (not counted).
    await drive(40, 8, (i) => postEvent(sink.url, `warm-${i}`));
    const warm = await countJobSinkObjects(input.admin, input.namespace, name);
    const rssWarmMb = rssMb(sink.pid);
    const cpu0 = cpuMs(sink.pid);
    const runs: JobSinkRun[] = [];
    let cpuBeside = 0;
    for (const c of input.concurrency ?? CONCURRENCY) {
      if (input.beside) {
        const before = cpuMs(sink.pid);
        await input.beside(c);
        cpuBeside += cpuMs(sink.pid) - before;
      }
      runs.push(summary(c, await drive(events, c, (i) => postEvent(sink.url, `c${c}-${i}`))));
    }
    const measured = events * runs.length;
    // JobSink's own CPU while the caller's runs went on (informers, GC) is not charged to its events.
    const cpuMsPerEvent = (cpuMs(sink.pid) - cpu0 - cpuBeside) / measured;
    const rssAfterMb = rssMb(sink.pid);
    const after = await countJobSinkObjects(input.admin, input.namespace, name);
    if (!sink.running()) throw new Error(`JobSink exited during the runs:\n${sink.log().slice(-3000)}`);
    const jobsPerEvent = (after.jobs - warm.jobs) / measured;
    const secretsPerEvent = (after.secrets - warm.secrets) / measured;
    return {
      runs,
      events,
      jobsPerEvent,
      secretsPerEvent,
      objectsPerEvent: jobsPerEvent + secretsPerEvent,
      rssWarmMb,
      rssAfterMb,
      cpuMsPerEvent,
      qps: JOBSINK_QPS,
      burst: JOBSINK_BURST,
    };
  } finally {
    await sink.stop();
  }
}

/** The bare loop: createNamespacedJob with a pooled client, the same Job body as JobSink's, unique names. */
async function bareRun(admin: KubeConfig, namespace: string, template: V1Job, c: number, events: number): Promise<Run> {
  const batch = admin.makeApiClient(BatchV1Api);
  const pooled = new CallOptions(10_000);
  const bodies = Array.from({ length: events }, (_, i) => {
    const body = structuredClone(template);
    body.metadata = { ...body.metadata, name: `bare-${c}-${i}-${randomUUID().slice(0, 6)}` };
    return body;
  });
  return drive(events, c, async (i) => void (await batch.createNamespacedJob({ namespace, body: bodies[i]! }, pooled.call({ body: bodies[i]! }))));
}

export async function main(): Promise<void> {
  const cp = await startControlPlane();
  process.env['JOB_ROBOT_TEST_KUBECONFIG'] = cp.kubeconfig;
  try {
    const admin = adminConfig();
    const namespace = await createNamespace(admin, 'bench-js');
    const template = structuredClone(DEFAULT_TEMPLATE);
    template.spec!.suspend = true;
    // The bare loop warmed, then alternating with JobSink at each concurrency, on the same API server and namespace.
    await bareRun(admin, namespace, template, 8, 40);
    const bareRuns: JobSinkRun[] = [];
    const js = await measureJobSink({
      admin,
      namespace,
      template,
      beside: async (c) => void bareRuns.push(summary(c, await bareRun(admin, namespace, template, c, EVENTS_PER_RUN))),
    });

    const rows: Row[] = js.runs.map((r, i) => ({
      c: r.concurrency,
      'JobSink Jobs/s': r.jobsPerSecond,
      'bare pooled Jobs/s': bareRuns[i]!.jobsPerSecond,
      ratio: r.jobsPerSecond / bareRuns[i]!.jobsPerSecond,
      'JobSink p50 ms': r.p50Ms,
      'JobSink p99 ms': r.p99Ms,
      'bare p50 ms': bareRuns[i]!.p50Ms,
      'bare p99 ms': bareRuns[i]!.p99Ms,
    }));
    printTable(`JobSink (knative.dev/eventing v0.49.2, --kube-api-qps=${js.qps} --kube-api-burst=${js.burst}) against a bare pooled createNamespacedJob loop, ${js.events} events per run`, rows);
    printTable('JobSink per event', [
      {
        'Jobs/event': js.jobsPerEvent,
        'Secrets/event': js.secretsPerEvent,
        'API objects/event': js.objectsPerEvent,
        'CPU ms/event': js.cpuMsPerEvent,
        'RSS after warm-up MB': js.rssWarmMb,
        'RSS after MB': js.rssAfterMb,
      },
    ]);
    process.stdout.write('\n');
    const ratios = rows.map((r) => r['ratio'] as number);
    const figures: Record<string, number> = {};
    for (const [i, r] of js.runs.entries()) {
      figures[`jobsink_jobs_per_s_c${r.concurrency}`] = r.jobsPerSecond;
      figures[`jobsink_p50_ms_c${r.concurrency}`] = r.p50Ms;
      figures[`jobsink_p99_ms_c${r.concurrency}`] = r.p99Ms;
      figures[`bare_jobs_per_s_c${r.concurrency}`] = bareRuns[i]!.jobsPerSecond;
      figures[`ratio_c${r.concurrency}`] = ratios[i]!;
    }
    printResult('jobsink', Math.min(...ratios), {
      ...figures,
      objects_per_event: js.objectsPerEvent,
      jobs_per_event: js.jobsPerEvent,
      secrets_per_event: js.secretsPerEvent,
      cpu_ms_per_event: js.cpuMsPerEvent,
      rss_warm_mb: js.rssWarmMb,
      rss_after_mb: js.rssAfterMb,
      kube_api_qps: js.qps,
      kube_api_burst: js.burst,
      events_per_run: js.events,
    });
  } finally {
    await cp.stop();
  }
}
