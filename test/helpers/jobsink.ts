/**
 * Knative Eventing's JobSink receiver (`cmd/jobsink`, built by test/cluster/build.ts) as a local
 * process against the test control plane: the system a user would otherwise pick to turn events
 * into Jobs, run beside the launcher for comparison.
 *
 * What it needs, from its main.go and the release's config/: the JobSink CRD (and EventPolicy's,
 * which its auth verifier watches) in the API server; Knative's ConfigMaps in its system
 * namespace (config-logging is read before it starts); its own ServiceAccount with the release's
 * ClusterRole; and a JobSink object whose status carries the address Knative's controller would
 * write (the receiver reads status.address on every request). Requests are routed by path:
 * POST /<namespace>/<jobsink name>. It serves on 8080 and 8443, constants in its code, so it takes
 * the same machine-wide lock as the Knative plane's dispatcher (test/helpers/knative-plane.ts).
 */
import { BatchV1Api, CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureJobSink } from '../cluster/build.ts';
import { lockFile } from '../cluster/lock.ts';
import { freePort, isPortFree } from '../cluster/ports.ts';
import { installCrdFiles } from './knative.ts';
import { applyConfigMaps, applyRbac } from './knative-plane.ts';
import { createNamespace, deleteNamespace, serviceAccountConfig } from './kube.ts';

/** JobSink's HTTP and HTTPS ports: constants in its code (kncloudevents.NewHTTPEventReceiver(8080), (8443)). */
export const JOBSINK_PORTS = [8080, 8443] as const;
/** The lock the Knative plane takes for the same two ports (its dispatcher's). */
const PORTS_LOCK = join(tmpdir(), 'job-robot-knative-ports.lock');

/**
 * JobSink's API client limits (`--kube-api-qps`, `--kube-api-burst`, knative.dev/pkg's
 * environment flags). Unset, client-go allows 5 requests/s with bursts of 10, and JobSink makes
 * three calls per event (list, create Job, create Secret): under 2 events/s. Raised so the API
 * server, not the client's rate limiter, is the limit, as for the launcher, which has none.
 */
export const JOBSINK_QPS = 1000;
export const JOBSINK_BURST = 2000;

export interface JobSinkOptions {
  /** The namespace holding the JobSink object; its Jobs are created there. */
  namespace: string;
  /** The JobSink's spec.job: the Job every event becomes (name and labels are JobSink's). */
  template: V1Job;
  /** The JobSink object's name. */
  name?: string;
  /** config-logging's level: `info` as released; `debug` logs each Job in full. */
  logLevel?: 'debug' | 'info' | 'warn';
  /** Rewrites JobSink's client configuration (e.g. FaultProxy.through, to watch its calls). */
  apiServer?: (kc: KubeConfig) => KubeConfig;
}

export interface RunningJobSink {
  pid: number;
  child: ChildProcess;
  /** `http://127.0.0.1:8080/<namespace>/<name>`: where events are POSTed. */
  url: string;
  name: string;
  namespace: string;
  /** The namespace playing `knative-eventing`. */
  system: string;
  logFile: string;
  log(): string;
  running(): boolean;
  stop(): Promise<void>;
}

const SERVICE_ACCOUNT = 'job-sink';


/** The JobSink object with the status Knative's jobsink reconciler writes when OIDC and TLS are off. */
async function createJobSinkObject(admin: KubeConfig, system: string, opts: Required<Pick<JobSinkOptions, 'namespace' | 'template' | 'name'>>): Promise<void> {
  const api = admin.makeApiClient(CustomObjectsApi);
  const group = 'sinks.knative.dev';
  const version = 'v1alpha1';
  const plural = 'jobsinks';
  const created = (await api.createNamespacedCustomObject({
    group,
    version,
    plural,
    namespace: opts.namespace,
    body: { apiVersion: `${group}/${version}`, kind: 'JobSink', metadata: { name: opts.name, namespace: opts.namespace }, spec: { job: opts.template } },
  })) as { metadata: { generation: number } } & Record<string, unknown>;
  const now = new Date().toISOString();
  const condition = (type: string) => ({ type, status: 'True', lastTransitionTime: now });
  await api.replaceNamespacedCustomObjectStatus({
    group,
    version,
    plural,
    namespace: opts.namespace,
    name: opts.name,
    body: {
      ...created,
      status: {
        observedGeneration: created.metadata.generation,
        conditions: [condition('Addressable'), condition('EventPoliciesReady'), condition('Ready')],
        address: { name: 'http', url: `http://job-sink.${system}.svc.cluster.local/${opts.namespace}/${opts.name}` },
      },
    },
  });
}

/** Waits until JobSink answers at all (it listens only once its informers have synced). */
async function untilServing(child: ChildProcess, logFile: string, port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  };
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`jobsink exited (${child.exitCode ?? child.signalCode}) before serving:\n${log()}`);
    // A GET on a malformed path answers 400 without touching the API server.
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) })
      .then(async (r) => (await r.arrayBuffer(), true))
      .catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`jobsink did not serve within ${timeoutMs} ms:\n${log()}`);
}

/** Starts JobSink against the cluster `admin` reaches, with a JobSink object in `opts.namespace`. */
export async function startJobSink(admin: KubeConfig, opts: JobSinkOptions): Promise<RunningJobSink> {
  const { binary, dir: cache } = await ensureJobSink();
  const name = opts.name ?? 'bench';
  await installCrdFiles(admin, readdirSync(join(cache, 'crds')).sort().map((f) => join(cache, 'crds', f)));
  const system = await createNamespace(admin, 'js-system');
  await applyConfigMaps(admin, cache, system, {}, opts.logLevel ?? 'info');
  const clusterBindings = await applyRbac(admin, cache, system);
  await createJobSinkObject(admin, system, { namespace: opts.namespace, template: opts.template, name });
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-jobsink-'));
  const kcPath = join(dir, 'kubeconfig');
  const own = await serviceAccountConfig(admin, system, SERVICE_ACCOUNT);
  writeFileSync(kcPath, (opts.apiServer ? opts.apiServer(own) : own).exportConfig(), { mode: 0o600 });

  const cleanup = async () => {
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    for (const b of clusterBindings) await rbac.deleteClusterRoleBinding({ name: b }).catch(() => undefined);
    await deleteNamespace(admin, system);
    if (!process.env['JOB_ROBOT_KEEP_CLUSTER_DIR']) rmSync(dir, { recursive: true, force: true });
  };

  const release = await lockFile(PORTS_LOCK, (holder) =>
    process.stderr.write(`[jobsink] waiting for process ${holder}, which holds ports ${JOBSINK_PORTS.join(' and ')}\n`),
  );
  let child: ChildProcess | undefined;
  const logFile = join(dir, 'jobsink.log');
  try {
    for (const port of JOBSINK_PORTS) {
      if (!(await isPortFree(port))) throw new Error(`port ${port} is taken by another program: JobSink listens on ${JOBSINK_PORTS.join(' and ')} (constants in its code)`);
    }
    const out = createWriteStream(logFile, { flags: 'a' });
    child = spawn(binary, [`--kubeconfig=${kcPath}`, `--kube-api-qps=${JOBSINK_QPS}`, `--kube-api-burst=${JOBSINK_BURST}`], {
      env: {
        PATH: process.env['PATH'] ?? '',
        // As config/core/deployments/job-sink.yaml sets them.
        SYSTEM_NAMESPACE: system,
        NAMESPACE: system,
        POD_NAME: 'job-sink-0',
        CONTAINER_NAME: 'job-sink',
        CONFIG_LOGGING_NAME: 'config-logging',
        CONFIG_OBSERVABILITY_NAME: 'config-observability',
        METRICS_DOMAIN: 'knative.dev/internal/eventing',
        INGRESS_PORT: String(JOBSINK_PORTS[0]),
        INGRESS_PORT_HTTPS: String(JOBSINK_PORTS[1]),
        PROFILING_PORT: String(await freePort()),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    await untilServing(child, logFile, JOBSINK_PORTS[0]);
  } catch (err) {
    child?.kill('SIGKILL');
    release();
    await cleanup();
    throw err;
  }
  const proc = child;
  const exited = new Promise<void>((resolve) => (proc.exitCode !== null ? resolve() : proc.once('exit', () => resolve())));
  const running = () => proc.exitCode === null && proc.signalCode === null;
  return {
    pid: proc.pid!,
    child: proc,
    url: `http://127.0.0.1:${JOBSINK_PORTS[0]}/${opts.namespace}/${name}`,
    name,
    namespace: opts.namespace,
    system,
    logFile,
    log: () => readFileSync(logFile, 'utf8'),
    running,
    async stop() {
      if (running()) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      release();
      await cleanup();
    },
  };
}

/** The JobSink's label on the Jobs and Secrets it creates (sinks.JobSinkNameLabel). */
export const JOBSINK_NAME_LABEL = 'sinks.knative.dev/job-sink-name';

/** Counts what the JobSink `name` created in `namespace`: Jobs and Secrets carrying its label. */
export async function countJobSinkObjects(admin: KubeConfig, namespace: string, name: string): Promise<{ jobs: number; secrets: number }> {
  const labelSelector = `${JOBSINK_NAME_LABEL}=${name}`;
  const [jobs, secrets] = await Promise.all([
    admin.makeApiClient(BatchV1Api).listNamespacedJob({ namespace, labelSelector }),
    admin.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace, labelSelector }),
  ]);
  return { jobs: jobs.items.length, secrets: secrets.items.length };
}
