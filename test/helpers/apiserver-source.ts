/**
 * Knative Eventing's ApiServerSource receive adapter (`cmd/apiserver_receive_adapter`,
 * knative.dev/eventing, built by test/cluster/build.ts) as a local process against the test
 * control plane, configured as the ApiServerSource controller configures its Deployment
 * (pkg/reconciler/apiserversource/resources/receive_adapter.go): K_SINK, K_SOURCE_CONFIG (the
 * namespaces, the resources with their GVR and label selector, the event mode), NAMESPACE and NAME
 * of the source, SYSTEM_NAMESPACE, METRICS_DOMAIN, K_LOGGING_CONFIG (the release's
 * config-logging), K_OBSERVABILITY_CONFIG and, when the source has them, K_CE_OVERRIDES.
 * K_SINK_TIMEOUT stays unset, as the controller leaves it: no timeout on a send.
 *
 * It acts as its own ServiceAccount (spec.serviceAccountName), which may only get, list and watch
 * Jobs in the source's namespace: the rights the controller checks before it deploys the adapter.
 * In a pod the adapter reads that identity's token from the in-cluster files; here a bound token
 * from the TokenRequest API comes in a kubeconfig, as for the other Knative processes
 * (knative-plane.ts). The events' source attribute is the API server's address it was given
 * (in a cluster `https://<KUBERNETES_SERVICE_HOST>:443`).
 *
 * Its health probes listen on 8080, a constant in knative.dev/pkg; while one runs it holds the
 * machine-wide lock the Knative plane's dispatcher and JobSink take for that port, so a test
 * process must not start a Knative plane with the dispatcher or mtping while it holds one.
 */
import { type KubeConfig } from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ensureApiServerSource } from '../cluster/build.ts';
import { lockFile } from '../cluster/lock.ts';
import { freePort } from '../cluster/ports.ts';
import type { ClusterNames } from './knative-names.ts';
import { applyManifests, serviceAccountConfig } from './kube.ts';

/** The lock the Knative plane and JobSink take for port 8080 (test/helpers/knative-plane.ts, jobsink.ts). */
const PORTS_LOCK = join(tmpdir(), 'job-robot-knative-ports.lock');

/** The event types of Resource mode (knative.dev/eventing pkg/apis/sources, ApiServerSource*EventType). */
export const RESOURCE_EVENT_TYPES = {
  add: 'dev.knative.apiserver.resource.add',
  update: 'dev.knative.apiserver.resource.update',
  delete: 'dev.knative.apiserver.resource.delete',
} as const;

/** The event types of Reference mode: the data is a reference to the object, not the object. */
export const REFERENCE_EVENT_TYPES = {
  add: 'dev.knative.apiserver.ref.add',
  update: 'dev.knative.apiserver.ref.update',
  delete: 'dev.knative.apiserver.ref.delete',
} as const;

/** The rules job-robot's watcher identity holds on its namespace's Jobs: what the adapter reads with, nothing more. */
export const JOB_WATCH_RULES = [{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch'] }];

export interface ApiServerSourceOptions {
  /** The ApiServerSource's namespace: the adapter watches Jobs there (no namespaceSelector). */
  namespace: string;
  /** K_SINK: where events go (the resolved sink URI; a cluster name needs `names`). */
  sink: string;
  /** The label selector of the Jobs watched, as the controller renders spec.resources[].selector. */
  selector?: string;
  /** spec.mode: the whole object (Resource) or a reference to it (Reference). Default Resource. */
  mode?: 'Resource' | 'Reference';
  /** spec.ceOverrides.extensions: set on every event. */
  ceOverrides?: Record<string, string>;
  /** The ApiServerSource's name (NAME). */
  name?: string;
  /** spec.serviceAccountName; created with JOB_WATCH_RULES through a Role and RoleBinding. */
  serviceAccount?: string;
  /** The namespace playing `knative-eventing` (SYSTEM_NAMESPACE). */
  system?: string;
  /** config-logging's level for the adapter: `debug` logs every send. Default debug. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Cluster names the sink may be addressed by (a Knative plane's proxy). */
  names?: ClusterNames;
}

export interface RunningApiServerSource {
  name: string;
  namespace: string;
  serviceAccount: string;
  /** The API server address the adapter was given: every event's source attribute. */
  apiServer: string;
  /** The current process's log file (each start gets its own). */
  logFile: string;
  /** The current process's log. */
  log(): string;
  /** The current process's JSON log lines (zap, from config-logging), parsed. */
  lines(): Array<Record<string, unknown>>;
  /** How many processes were started so far. */
  starts(): number;
  running(): boolean;
  /** The current process's pid, while it runs (benchmarks read its CPU time). */
  pid(): number | undefined;
  /** Ends the process with `signal` (default SIGKILL: a crash, or a node gone) and waits for it. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Ends the process if it runs (SIGTERM), starts a new one with a fresh token, and waits until it watches. */
  restart(): Promise<void>;
  /** Ends the process (SIGTERM), releases the port lock and removes its files (the ServiceAccount and its Role go with the namespace). */
  stop(): Promise<void>;
}

/**
 * K_LOGGING_CONFIG as the controller gives it (knative.dev/eventing pkg/reconciler/source
 * ConfigWatcher, knative.dev/pkg logging.ConfigToJSON): the release's zap configuration, at `level`.
 */
function loggingConfig(cacheDir: string, level: string): string {
  const cm = parse(readFileSync(join(cacheDir, 'configmaps', 'logging.yaml'), 'utf8')) as { data?: Record<string, string> };
  const zap = cm.data?.['zap-logger-config'];
  if (!zap) throw new Error(`${cacheDir}/configmaps/logging.yaml holds no zap-logger-config`);
  const config = JSON.parse(zap) as Record<string, unknown>;
  return JSON.stringify({ 'zap-logger-config': JSON.stringify({ ...config, level }) });
}

/** K_SOURCE_CONFIG as the controller marshals knative.dev/eventing pkg/adapter/apiserver.Config. */
function sourceConfig(opts: ApiServerSourceOptions): string {
  return JSON.stringify({
    namespaces: [opts.namespace],
    allNamespaces: false,
    resources: [{ gvr: { Group: 'batch', Version: 'v1', Resource: 'jobs' }, ...(opts.selector ? { selector: opts.selector } : {}) }],
    mode: opts.mode ?? 'Resource',
  });
}

/** The ServiceAccount with JOB_WATCH_RULES on `namespace`'s Jobs (server-side apply: repeatable). */
async function applyWatcherIdentity(admin: KubeConfig, namespace: string, name: string): Promise<void> {
  const meta = { name, namespace };
  await applyManifests(admin, JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta }));
  await applyManifests(admin, JSON.stringify({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta, rules: JOB_WATCH_RULES }));
  await applyManifests(
    admin,
    JSON.stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    }),
  );
}

/**
 * The adapter's reflector logs "Caches populated" (client-go, at -v=2) once its first list is in;
 * from then on every change to a watched Job is an event. Nothing else marks that moment: the
 * adapter sends nothing for the Jobs that list finds.
 */
async function untilWatching(child: ChildProcess, logFile: string, timeoutMs = 30_000): Promise<void> {
  const read = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the ApiServerSource adapter exited (${child.exitCode ?? child.signalCode}) before watching:\n${read().slice(-4000)}`);
    if (read().includes('"Caches populated"')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the ApiServerSource adapter did not list its Jobs within ${timeoutMs} ms:\n${read().slice(-4000)}`);
}

/** Starts the adapter for an ApiServerSource in `opts.namespace` watching its Jobs; resolves once it watches. */
export async function startApiServerSource(admin: KubeConfig, opts: ApiServerSourceOptions): Promise<RunningApiServerSource> {
  const { binary, dir: cache } = await ensureApiServerSource();
  const name = opts.name ?? 'job-robot-jobs';
  const serviceAccount = opts.serviceAccount ?? 'job-robot-job-watcher';
  const level = opts.logLevel ?? 'debug';
  await applyWatcherIdentity(admin, opts.namespace, serviceAccount);
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-apiserversource-'));
  const kcPath = join(dir, 'kubeconfig');
  const apiServer = admin.getCurrentCluster()!.server;
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    ...(opts.names?.env() ?? {}),
    K_SINK: opts.sink,
    K_SOURCE_CONFIG: sourceConfig(opts),
    SYSTEM_NAMESPACE: opts.system ?? 'knative-eventing',
    NAMESPACE: opts.namespace,
    NAME: name,
    METRICS_DOMAIN: 'knative.dev/eventing',
    K_LOGGING_CONFIG: loggingConfig(cache, level),
    K_OBSERVABILITY_CONFIG: '{}',
    ...(opts.ceOverrides ? { K_CE_OVERRIDES: JSON.stringify({ extensions: opts.ceOverrides }) } : {}),
    PROFILING_PORT: String(await freePort()),
  };

  const release = await lockFile(PORTS_LOCK, (holder) =>
    process.stderr.write(`[apiserversource] waiting for process ${holder}, which holds port 8080 (the adapter's health probes)\n`),
  );
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let logFile = join(dir, 'adapter-0.log');
  let count = 0;
  const running = () => !!child && child.exitCode === null && child.signalCode === null;
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const end = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc || !running()) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const start = async () => {
    count++;
    logFile = join(dir, `adapter-${count}.log`);
    writeFileSync(kcPath, (await serviceAccountConfig(admin, opts.namespace, serviceAccount)).exportConfig(), { mode: 0o600 });
    const out = createWriteStream(logFile, { flags: 'a' });
    // -v=2: client-go's reflector logs when its first list is in (untilWatching).
    const proc = spawn(binary, [`--kubeconfig=${kcPath}`, '-v=2'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
    child = proc;
    exited = new Promise((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once('exit', () => resolve())));
    await untilWatching(proc, logFile);
  };
  // Last resort when the test process exits without stop(): kill the adapter, by PID.
  const killOnExit = () => {
    if (running()) child!.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const cleanup = () => {
    process.removeListener('exit', killOnExit);
    release();
    if (!process.env['JOB_ROBOT_KEEP_CLUSTER_DIR']) rmSync(dir, { recursive: true, force: true });
  };

  try {
    await start();
  } catch (err) {
    await end('SIGKILL');
    cleanup();
    throw err;
  }
  return {
    name,
    namespace: opts.namespace,
    serviceAccount,
    apiServer,
    get logFile() {
      return logFile;
    },
    log,
    lines: () =>
      log()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    starts: () => count,
    running,
    pid: () => (running() ? child!.pid : undefined),
    kill: (signal = 'SIGKILL') => end(signal),
    async restart() {
      await end('SIGTERM');
      await start();
    },
    async stop() {
      try {
        await end('SIGTERM');
      } finally {
        cleanup();
      }
    },
  };
}
