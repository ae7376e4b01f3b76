/**
 * The whole job-robot pipeline on this machine, wired as Knative would wire it: config/rbac.yaml
 * applied, the job-robot ServiceAccount's token in a kubeconfig file (as a pod would have it), and
 * the bridge, the launcher and the reaper as separate processes (`node function/cli.ts <name>`),
 * the bridge's K_SINK pointing at the launcher. Around them: the kubelet stand-in (helpers/
 * kubelet.ts) and a timer standing in for the PingSource. Used by the end-to-end tests, the
 * pipeline benchmark and `npm run dev`.
 *
 * Every component listens on a port chosen up front, so a component killed with SIGKILL comes back
 * where the others expect it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig, V1Job } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { queueKeys, type QueueKeys } from '../../function/queue/keys.ts';
import { sourceUrl } from '../../function/kube/event-source.ts';
import { loadRedisSettings } from '../../function/config/redis.ts';
import { freePort } from '../cluster/ports.ts';
import { ownerSelector } from '../../function/kube/labels.ts';
import { startApiServerSource, type RunningApiServerSource } from './apiserver-source.ts';
import { applyManifests, serviceAccountConfig } from './kube.ts';
import { startKubeletStandIn, type KubeletOptions, type KubeletStandIn } from './kubelet.ts';
import { kubeletExpand } from './launcher.ts';
import { readRepoFile, ROOT } from './paths.ts';

export type ComponentName = 'bridge' | 'launcher' | 'reaper' | 'results';

/** The Job template job-robot ships (config/job-template.yaml's `job.yaml`), as the launcher reads it. */
export function shippedTemplate(): V1Job {
  const configMap = parse(readRepoFile('config/job-template.yaml')) as { data: Record<string, string> };
  return parse(configMap.data['job.yaml']!) as V1Job;
}

/**
 * Applies config/rbac.yaml into `namespace` and writes a kubeconfig holding a bound token of the
 * job-robot ServiceAccount (TokenRequest), as a pod running under it would authenticate. Returns
 * the file's path.
 */
export async function writeJobRobotKubeconfig(admin: KubeConfig, namespace: string, dir: string, expirationSeconds = 3600): Promise<string> {
  await applyManifests(admin, readRepoFile('config/rbac.yaml'), namespace);
  const robot = await serviceAccountConfig(admin, namespace, 'job-robot', expirationSeconds);
  const path = join(dir, 'job-robot.kubeconfig');
  writeFileSync(path, robot.exportConfig(), { mode: 0o600 });
  return path;
}

/** Waits until `url` answers 2xx. */
export async function waitHttpOk(what: string, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      last = `${res.status} ${(await res.text()).slice(0, 300)}`;
      if (res.ok) return;
    } catch (err) {
      last = (err as Error).message; // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready at ${url} after ${timeoutMs} ms (last: ${last})`);
}

/** What a Knative PingSource sends the reaper. Resolves with the run's summary (or the error answer). */
export async function pingReaper(url: string, id: string, namespace: string): Promise<{ status: number; summary: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': id,
      'ce-source': `/apis/v1/namespaces/${namespace}/pingsources/job-robot-reaper`,
      'ce-type': 'dev.knative.sources.ping',
    },
    body: '{"trigger":"schedule"}',
    signal: AbortSignal.timeout(60_000),
  });
  const summary = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, summary };
}

/**
 * One component as a child process on a fixed port. `start()` spawns it (again after a kill),
 * `kill9()` is a crash, `terminate()` a graceful stop. JSON log lines are kept (and passed to
 * `onLine`); the process is killed if the test process exits first.
 */
export class Component {
  /** Every component started and not yet exited, for cleanup after a failed test. */
  static readonly running = new Set<Component>();

  static async killAll(): Promise<void> {
    await Promise.all([...Component.running].map((c) => c.kill9()));
  }

  /** One exit hook for every component (one each would trip Node's listener-leak warning). */
  private static hooked = false;
  private static hookExit(): void {
    if (Component.hooked) return;
    Component.hooked = true;
    process.once('exit', () => {
      for (const c of Component.running) c.child?.kill('SIGKILL');
    });
  }

  readonly name: ComponentName;
  readonly port: number;
  env: Record<string, string>;
  /** JSON log lines of every run, oldest first. */
  readonly logs: Record<string, unknown>[] = [];
  /** Non-JSON output (stderr, crashes), every run. */
  readonly raw: string[] = [];
  /** How many times it has been started. */
  starts = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly onLine: ((name: ComponentName, line: Record<string, unknown> | string) => void) | undefined;

  constructor(
    name: ComponentName,
    port: number,
    env: Record<string, string>,
    opts: { onLine?: (name: ComponentName, line: Record<string, unknown> | string) => void } = {},
  ) {
    this.name = name;
    this.port = port;
    this.env = env;
    this.onLine = opts.onLine;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): this {
    if (this.alive) throw new Error(`${this.name} is already running (pid ${this.child!.pid})`);
    const child = spawn(process.execPath, [join(ROOT, 'function', 'cli.ts'), this.name], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'info', OIDC_AUTHENTICATION: 'disabled', ...this.env, PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts += 1;
    Component.hookExit();
    Component.running.add(this);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        if (this.child === child) Component.running.delete(this);
        resolve();
      }),
    );
    const lines = (stream: NodeJS.ReadableStream) => {
      let buf = '';
      stream.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          let entry: Record<string, unknown> | undefined;
          try {
            entry = JSON.parse(line) as Record<string, unknown>;
          } catch {
            // not a log line
          }
          if (entry) this.logs.push(entry);
          else this.raw.push(line);
          this.onLine?.(this.name, entry ?? line);
        }
      });
    };
    lines(child.stdout!);
    lines(child.stderr!);
    return this;
  }

  /** Waits until /health/readiness answers 200; fails early when the process exits. */
  async ready(timeoutMs = 60_000): Promise<void> {
    const child = this.child;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!child || child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.name} exited (${child?.exitCode ?? child?.signalCode}) before it was ready: ${this.raw.slice(-5).join('\n')}`);
      }
      try {
        const res = await fetch(`${this.url}/health/readiness`, { signal: AbortSignal.timeout(1000) });
        last = `${res.status} ${await res.text()}`;
        if (res.ok) return;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.name} not ready at ${this.url} after ${timeoutMs} ms (last: ${last})`);
  }

  /** SIGKILL: a crash. */
  async kill9(): Promise<void> {
    if (this.alive) this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  async terminate(graceMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (!child) return { code: null, signal: null };
    if (this.alive) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    return { code: child.exitCode, signal: child.signalCode };
  }

  /** The sum of a metric's series whose labels include `labels` (0 when absent). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      const m = /^([^{ ]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  }

  logged(message: string): Record<string, unknown>[] {
    return this.logs.filter((l) => l['message'] === message);
  }
}

export interface PipelineOptions {
  admin: KubeConfig;
  namespace: string;
  redisUrl: string;
  queue: string;
  /** The launcher's template (written to JOB_TEMPLATE_PATH); default: the shipped one. */
  template?: V1Job;
  /** Extra environment per component, over what startPipeline sets (credentials, ports, K_SINK, CONSUMER). */
  launcherEnv?: Record<string, string>;
  bridgeEnv?: Record<string, string>;
  reaperEnv?: Record<string, string>;
  resultsEnv?: Record<string, string>;
  /**
   * With results: the results function, fed by Knative's own ApiServerSource adapter watching
   * job-robot's Jobs (test/helpers/apiserver-source.ts), as config/results.yaml wires them minus
   * the Broker between them. Off by default.
   */
  results?: boolean;
  /** Without a reaper: no process and no pings. */
  reaper?: boolean;
  /** The kubelet stand-in's options; false for none (Jobs' pods then never finish). */
  kubelet?: KubeletOptions | false;
  /** How often the PingSource stand-in pings the reaper. */
  pingEveryMs?: number;
  onLine?: (name: ComponentName, line: Record<string, unknown> | string) => void;
}

export interface Pipeline {
  launcher: Component;
  bridge: Component;
  reaper: Component | undefined;
  /** The results function and the ApiServerSource adapter feeding it (with `results`). */
  results: Component | undefined;
  jobWatch: RunningApiServerSource | undefined;
  kubelet: KubeletStandIn | undefined;
  /** The job-robot ServiceAccount's kubeconfig file. */
  robotKubeconfig: string;
  /** The Redis keys of the queue. */
  keys: QueueKeys;
  /** The CloudEvent source the bridge gives every item (part of each Job's identity). */
  source: string;
  /** Pings sent to the reaper, and how many of them it answered 200. */
  pings(): { sent: number; ok: number };
  /** Stops the pings, the kubelet stand-in and every component (SIGTERM), and removes the files. */
  stop(): Promise<void>;
}

/** Starts launcher and reaper, then the bridge (once the launcher is ready), then the stand-ins. */
export async function startPipeline(o: PipelineOptions): Promise<Pipeline> {
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-pipeline-'));
  const robotKubeconfig = await writeJobRobotKubeconfig(o.admin, o.namespace, dir);
  const templatePath = join(dir, 'job.json');
  writeFileSync(templatePath, JSON.stringify(o.template ?? shippedTemplate()));
  const [launcherPort, bridgePort, reaperPort, resultsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const asRobot = { KUBECONFIG: robotKubeconfig, NAMESPACE: o.namespace };
  const opts = o.onLine ? { onLine: o.onLine } : {};

  const launcher = new Component('launcher', launcherPort, { ...asRobot, JOB_TEMPLATE_PATH: templatePath, ...o.launcherEnv }, opts);
  // The bridge's queue, which the reaper reads too (as config/ wires them): it keeps a finished
  // Job while its item is in flight.
  const queue = { REDIS_URL: o.redisUrl, QUEUE_KEY: o.queue, ...(o.bridgeEnv?.['MODE'] ? { MODE: o.bridgeEnv['MODE'] } : {}) };
  const reaper = o.reaper === false ? undefined : new Component('reaper', reaperPort, { ...asRobot, ...queue, ...o.reaperEnv }, opts);
  const results = o.results ? new Component('results', resultsPort, { ...asRobot, ...queue, ...o.resultsEnv }, opts) : undefined;
  let jobWatch: RunningApiServerSource | undefined;
  const settings = loadRedisSettings(queue);
  const source = sourceUrl(settings.redis, settings.queueKey);
  const bridge = new Component('bridge', bridgePort, { ...queue, K_SINK: launcher.url, CONSUMER: 'pipeline-bridge', ...o.bridgeEnv }, opts);
  let kubelet: KubeletStandIn | undefined;
  let timer: NodeJS.Timeout | undefined;
  const pings = { sent: 0, ok: 0 };
  const stop = async () => {
    clearInterval(timer);
    await kubelet?.stop();
    await bridge.terminate();
    await jobWatch?.stop();
    await Promise.all([launcher.terminate(), reaper?.terminate(), results?.terminate()]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    launcher.start();
    reaper?.start();
    results?.start();
    await launcher.ready();
    await reaper?.ready();
    if (results) {
      await results.ready();
      jobWatch = await startApiServerSource(o.admin, {
        namespace: o.namespace,
        sink: results.url,
        // As config/results.yaml selects: this job-robot's Jobs, not another instance's.
        selector: ownerSelector(o.launcherEnv?.['INSTANCE'] || undefined),
        ceOverrides: { jobrobot: 'job-robot' },
      });
    }
    bridge.start();
    await bridge.ready();
    if (o.kubelet !== false) kubelet = startKubeletStandIn(o.admin, o.namespace, o.kubelet ?? {});
    if (reaper) {
      let inFlight = false;
      timer = setInterval(() => {
        if (inFlight || !reaper.alive) return;
        inFlight = true;
        pings.sent += 1;
        pingReaper(reaper.url, `ping-${pings.sent}`, o.namespace)
          .then(({ status }) => void (status === 200 && (pings.ok += 1)))
          .catch(() => undefined)
          .finally(() => (inFlight = false));
      }, o.pingEveryMs ?? 2000);
    }
  } catch (err) {
    await Promise.all([launcher.kill9(), bridge.kill9(), reaper?.kill9(), results?.kill9()]);
    await stop();
    throw err;
  }
  return { launcher, bridge, reaper, results, jobWatch, kubelet, robotKubeconfig, keys: queueKeys(o.queue), source, pings: () => ({ ...pings }), stop };
}

/** A Job's CE_* variable as its container sees it (the kubelet's `$$` → `$`). */
function eventVar(job: V1Job, name: string): string | undefined {
  const value = job.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === name)?.value;
  return value === undefined ? undefined : kubeletExpand(value);
}

/**
 * The item a Job received, as bytes, from CE_DATA and CE_DATA_ENCODING: JSON text (re-serialized
 * by the launcher), UTF-8 text, or base64 bytes. Undefined when the Job carries no data.
 */
export function deliveredItem(job: V1Job): { encoding: string; bytes: Buffer } | undefined {
  const data = eventVar(job, 'CE_DATA');
  if (data === undefined) return undefined;
  const encoding = eventVar(job, 'CE_DATA_ENCODING') ?? '';
  return { encoding, bytes: encoding === 'base64' ? Buffer.from(data, 'base64') : Buffer.from(data, 'utf8') };
}

/** The CE_ID a Job received. */
export const deliveredId = (job: V1Job): string | undefined => eventVar(job, 'CE_ID');
