/**
 * Knative Serving's queue-proxy (`cmd/queue`, knative.dev/serving v0.49.1, built by
 * test/cluster/build.ts) in front of the launcher, both as plain local processes, with the
 * environment Knative gives a revision's two containers:
 *
 * - the queue-proxy: what makeQueueContainer (pkg/reconciler/revision/resources/queue.go) sets,
 *   the ones pkg/queue/sharedmain requires among them, and SERVING_READINESS_PROBE, the user
 *   container's readiness probe (config/launcher.yaml's) as the reconciler encodes it;
 * - the launcher: PORT, K_SERVICE, K_CONFIGURATION, K_REVISION (getKnativeEnvVar).
 *
 * The kubelet's part is played by the caller: `probe()` is its readiness probe of the queue-proxy
 * (an HTTP GET on the serving port with `K-Network-Probe: queue` and the kubelet's user agent),
 * `preStop()` the user container's pre-stop hook (GET :8022/wait-for-drain, which blocks while the
 * queue-proxy drains), and `terminate()` its SIGTERM.
 *
 * The queue-proxy's admin (8022) and autoscaling-metrics (9090) ports are constants in its code,
 * so one queue-proxy runs on the machine at a time, under a lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ensureQueueProxy } from '../cluster/build.ts';
import { lockFile } from '../cluster/lock.ts';
import { freePort, isPortFree } from '../cluster/ports.ts';
import { readRepoFile } from './paths.ts';

/** networking.QueueAdminPort and networking.AutoscalingQueueMetricsPort. */
export const QUEUE_PROXY_FIXED_PORTS = [8022, 9090] as const;
const PORTS_LOCK = join(tmpdir(), 'job-robot-queue-proxy-ports.lock');

/** The kubelet's User-Agent on probes (`kube-probe/<major>.<minor>`); the queue-proxy's drainer treats it as a health check. */
const KUBELET_USER_AGENT = 'kube-probe/1.35';

/** The revision a local queue-proxy and launcher pretend to be. */
export interface Revision {
  namespace: string;
  service: string;
  configuration: string;
  revision: string;
  /** spec.template.spec.containerConcurrency (0: unbounded). */
  containerConcurrency: number;
  timeoutSeconds: number;
  /** The user container's readinessProbe, as written in the Service. */
  readinessProbe: { httpGet?: { path?: string }; periodSeconds?: number; timeoutSeconds?: number };
}

interface ServiceManifest {
  metadata: { name: string };
  spec: {
    template: {
      spec: {
        containerConcurrency?: number;
        timeoutSeconds?: number;
        containers: Array<{ readinessProbe?: Revision['readinessProbe'] }>;
      };
    };
  };
}

/** The launcher's revision from config/launcher.yaml (the first revision's names), in `namespace`. */
export function launcherRevision(namespace: string, overrides: Partial<Revision> = {}): Revision {
  const svc = parse(readRepoFile('config/launcher.yaml')) as ServiceManifest;
  const spec = svc.spec.template.spec;
  const probe = spec.containers[0]?.readinessProbe;
  if (!probe?.httpGet) throw new Error('config/launcher.yaml: the launcher container has no httpGet readinessProbe');
  return {
    namespace,
    service: svc.metadata.name,
    configuration: svc.metadata.name,
    revision: `${svc.metadata.name}-00001`,
    containerConcurrency: spec.containerConcurrency ?? 0,
    timeoutSeconds: spec.timeoutSeconds ?? 300,
    readinessProbe: probe,
    ...overrides,
  };
}

/**
 * SERVING_READINESS_PROBE: the user container's probe with the reconciler's defaults applied
 * (applyReadinessProbeDefaults: host 127.0.0.1, the user port, scheme HTTP, a timeout of at least
 * 1 s when a period is set), JSON-encoded as readiness.EncodeSingleProbe does.
 */
export function servingReadinessProbe(rev: Revision, userPort: number): string {
  const p = rev.readinessProbe;
  const periodSeconds = p.periodSeconds ?? 0;
  const timeoutSeconds = periodSeconds > 0 && (p.timeoutSeconds ?? 0) < 1 ? 1 : p.timeoutSeconds;
  return JSON.stringify({
    httpGet: { path: p.httpGet?.path ?? '/', port: userPort, host: '127.0.0.1', scheme: 'HTTP' },
    ...(timeoutSeconds ? { timeoutSeconds } : {}),
    ...(periodSeconds ? { periodSeconds } : {}),
  });
}

/** Knative's config-logging zap configuration (serving's release), at info level. */
const ZAP_CONFIG = JSON.stringify({
  level: 'info',
  development: false,
  outputPaths: ['stdout'],
  errorOutputPaths: ['stderr'],
  encoding: 'json',
  encoderConfig: { timeKey: 'timestamp', levelKey: 'severity', nameKey: 'logger', callerKey: 'caller', messageKey: 'message', stacktraceKey: 'stacktrace', lineEnding: '', levelEncoder: '', timeEncoder: 'iso8601', durationEncoder: '', callerEncoder: '' },
});

/** The queue-proxy container's environment (makeQueueContainer), for a pod on 127.0.0.1. */
export function queueProxyEnv(rev: Revision, ports: { serving: number; tls: number; user: number }): Record<string, string> {
  return {
    SERVING_NAMESPACE: rev.namespace,
    SERVING_SERVICE: rev.service,
    SERVING_CONFIGURATION: rev.configuration,
    SERVING_REVISION: rev.revision,
    QUEUE_SERVING_PORT: String(ports.serving),
    QUEUE_SERVING_TLS_PORT: String(ports.tls),
    CONTAINER_CONCURRENCY: String(rev.containerConcurrency),
    REVISION_TIMEOUT_SECONDS: String(rev.timeoutSeconds),
    REVISION_RESPONSE_START_TIMEOUT_SECONDS: '0',
    REVISION_IDLE_TIMEOUT_SECONDS: '0',
    SERVING_POD: `${rev.revision}-deployment-local`,
    SERVING_POD_IP: '127.0.0.1',
    SERVING_LOGGING_CONFIG: ZAP_CONFIG,
    SERVING_LOGGING_LEVEL: 'info',
    USER_PORT: String(ports.user),
    SYSTEM_NAMESPACE: 'knative-serving',
    SERVING_READINESS_PROBE: servingReadinessProbe(rev, ports.user),
    HOST_IP: '127.0.0.1',
    ENABLE_HTTP2_AUTO_DETECTION: 'false',
    ENABLE_HTTP_FULL_DUPLEX: 'false',
    ROOT_CA: '',
    QUEUE_PROXY_TLS_MIN_VERSION: '',
    QUEUE_PROXY_TLS_MAX_VERSION: '',
    QUEUE_PROXY_TLS_CIPHER_SUITES: '',
    QUEUE_PROXY_TLS_CURVE_PREFERENCES: '',
    ENABLE_MULTI_CONTAINER_PROBES: 'false',
    OBSERVABILITY_CONFIG: '{}',
  };
}

/** The variables Knative adds to the user container (getKnativeEnvVar), and PORT. */
export function userContainerEnv(rev: Revision, userPort: number): Record<string, string> {
  return { PORT: String(userPort), K_SERVICE: rev.service, K_CONFIGURATION: rev.configuration, K_REVISION: rev.revision };
}

export interface QueueProxy {
  child: ChildProcess;
  /** `http://127.0.0.1:<serving port>`: where the activator (or a mesh) sends requests. */
  url: string;
  servingPort: number;
  userPort: number;
  startedAt: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The kubelet's readiness probe of the queue-proxy: its status (0 when nothing answered). */
  probe(): Promise<number>;
  /** The user container's pre-stop hook: GET :8022/wait-for-drain; resolves with its status once it returns. */
  preStop(): Promise<number>;
  /** SIGTERM, as the kubelet sends when the pod is deleted. */
  terminate(): void;
  log(): string;
  running(): boolean;
  /** SIGKILL (when still running) and frees the fixed ports. */
  kill(): Promise<void>;
}

/**
 * Takes the machine-wide lock for the queue-proxy's fixed ports and returns its release. Hold it
 * over every queue-proxy a suite starts; it fails if another program holds the ports.
 */
export async function lockQueueProxyPorts(): Promise<() => void> {
  const release = await lockFile(PORTS_LOCK, (holder) =>
    process.stderr.write(`[queue-proxy] waiting for process ${holder}, whose queue-proxy holds ports ${QUEUE_PROXY_FIXED_PORTS.join(' and ')}\n`),
  );
  for (const port of QUEUE_PROXY_FIXED_PORTS) {
    if (!(await isPortFree(port))) {
      release();
      throw new Error(`port ${port} is taken by another program: the queue-proxy listens on ${QUEUE_PROXY_FIXED_PORTS.join(' and ')} (constants in its code)`);
    }
  }
  return release;
}

/** Spawns the queue-proxy for `rev`, proxying to `userPort`. The caller holds lockQueueProxyPorts(). */
export async function spawnQueueProxy(rev: Revision, userPort: number, binary?: string): Promise<QueueProxy> {
  const bin = binary ?? (await ensureQueueProxy());
  const [serving, tls] = [await freePort(), await freePort()];
  const startedAt = performance.now();
  const child = spawn(bin, [], { env: { PATH: process.env['PATH'] ?? '', ...queueProxyEnv(rev, { serving, tls, user: userPort }) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const running = () => child.exitCode === null && child.signalCode === null;
  const url = `http://127.0.0.1:${serving}`;
  return {
    child,
    url,
    servingPort: serving,
    userPort,
    startedAt,
    exited,
    probe: () =>
      fetch(`${url}/`, { headers: { 'K-Network-Probe': 'queue', 'User-Agent': KUBELET_USER_AGENT }, signal: AbortSignal.timeout(2_000) })
        .then(async (r) => (await r.arrayBuffer(), r.status))
        .catch(() => 0),
    preStop: () =>
      fetch(`http://127.0.0.1:${QUEUE_PROXY_FIXED_PORTS[0]}/wait-for-drain`, { headers: { 'User-Agent': `kubelet/${KUBELET_USER_AGENT.split('/')[1]}` } }).then(async (r) => (await r.arrayBuffer(), r.status)),
    terminate: () => void child.kill('SIGTERM'),
    log: () => out,
    running,
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Polls `probe` every `everyMs` until it answers 200; returns when, in ms from performance.now()'s origin. */
export async function untilReady(qp: QueueProxy, timeoutMs = 30_000, everyMs = 2): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (!qp.running()) throw new Error(`queue-proxy exited before it was ready:\n${qp.log().slice(-4000)}`);
    if ((await qp.probe()) === 200) return performance.now();
    if (performance.now() > deadline) throw new Error(`queue-proxy not ready within ${timeoutMs} ms:\n${qp.log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
