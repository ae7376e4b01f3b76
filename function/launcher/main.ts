/**
 * The launcher's wiring: configuration, template, Kubernetes clients, capacity, start-up checks,
 * HTTP app. `createLauncher` builds it all from clients the caller passes (tests pass the real
 * ones pointed at the test control plane); `main` runs it on PORT until SIGTERM.
 */
import type { V1Job } from '@kubernetes/client-node';
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import { SenderAuth } from '../auth/gate.ts';
import { ConfigError } from '../config/base.ts';
import { Health } from '../http/health.ts';
import { PayloadTooLarge } from '../http/errors.ts';
import { createRegistry } from '../http/metrics.ts';
import { listen, onShutdown } from '../http/server.ts';
import { credentialsAtStart, namespaceOf } from '../kube/credentials.ts';
import { KubeRest } from '../kube/rest.ts';
import { ownerLabels, ownerSelector } from '../kube/labels.ts';
import { launcherPermissions } from '../kube/permissions.ts';
import { createLogger, type Logger } from '../log.ts';
import { launcherApp } from './app.ts';
import { ActiveCap, Unlimited, type Capacity } from './capacity.ts';
import { loadLauncherConfig, type LauncherConfig } from './config.ts';
import { Launcher, type LaunchSettings } from './create.ts';
import { LauncherMetrics } from './metrics.ts';
import { PERMISSIONS_CHECK, Startup, TEMPLATE_CHECK } from './startup.ts';
import { JobStatus } from './status.ts';
import { loadTemplate } from '../kube/job-template.ts';
import { CloudEvent } from 'cloudevents';
import { QUEUE_ITEM_TYPE } from '../events.ts';
import { startupPhase } from '../startup-trace.ts';

export const CAPACITY_CHECK = 'capacity';

export interface LauncherParts {
  app: Express;
  health: Health;
  launcher: Launcher;
  capacity: Capacity;
  namespace: string;
  auth: SenderAuth;
  /** Starts the start-up checks and the active-Job count; resolves after the first round of checks. */
  start(): Promise<boolean>;
  /** Stops background work and closes API connections. */
  stop(): Promise<void>;
}

export interface LauncherClients {
  /** The API server, as this launcher's identity; the launcher closes it when it stops. */
  rest: KubeRest;
  log: Logger;
  registry: Registry;
  /** The template (default: the one JOB_TEMPLATE_PATH names, or the built-in pi Job). */
  template?: V1Job;
  /** The sender check's clock (tests). */
  authClock?: () => Date;
}

/** Builds a launcher from configuration and clients; nothing runs until `start()`. */
export function createLauncher(config: LauncherConfig, clients: LauncherClients): LauncherParts {
  const { rest, log, registry } = clients;
  const template = clients.template ?? loadTemplate(config.jobTemplatePath);
  const namespace = namespaceOf(config.namespace, rest);
  const capped = config.maxActiveJobs > 0;
  const health = new Health([PERMISSIONS_CHECK, TEMPLATE_CHECK, ...(capped ? [CAPACITY_CHECK] : [])]);

  const capacity: Capacity = capped
    ? new ActiveCap({
        rest,
        namespace,
        selector: ownerSelector(config.instance),
        max: config.maxActiveJobs,
        retryAfterSeconds: config.retryAfterSeconds,
        log,
      })
    : new Unlimited();
  const metrics = new LauncherMetrics(registry, () => capacity.active);
  const settings: LaunchSettings = {
    prefix: config.jobNamePrefix,
    instance: config.instance,
    ttlSeconds: config.jobTtlSeconds,
    activeDeadlineSeconds: config.activeDeadlineSeconds,
    serviceAccount: config.jobServiceAccount,
    acceptedTypes: config.acceptedTypes,
    maxEventBytes: config.maxEventBytes,
    argsField: config.argsField,
    retryAfterSeconds: config.retryAfterSeconds,
  };
  const status = new JobStatus({ rest, namespace, owner: ownerLabels(config.instance), retryAfterSeconds: config.retryAfterSeconds });
  const launcher = new Launcher({ template, settings, rest, namespace, capacity, metrics, status });
  const sample = new CloudEvent<unknown>({ id: 'dry-run', source: 'job-robot/launcher/start-up', type: config.acceptedTypes.find((t) => t !== '*') ?? QUEUE_ITEM_TYPE, data: { sample: true } });
  const startup = new Startup({
    rest,
    namespace,
    health,
    log,
    permissions: launcherPermissions(capped),
    sampleJob: sampleJob(launcher, sample),
  });
  const auth = SenderAuth.from(config.auth, { rest, namespace, log, registry, ...(clients.authClock ? { now: clients.authClock } : {}) });
  const app = launcherApp({
    senders: auth.senders(),
    readers: auth.namespace(),
    launcher,
    status,
    health,
    registry,
    metrics,
    log,
    maxRequestBytes: config.maxRequestBytes,
    maxBatchEvents: config.maxBatchEvents,
  });

  return {
    app,
    health,
    launcher,
    capacity,
    namespace,
    auth,
    async start() {
      void auth.warm();
      if (capacity instanceof ActiveCap) {
        health.fail(CAPACITY_CHECK, 'counting active Jobs');
        capacity.start();
        void capacity.synced.then(() => {
          startupPhase('check:active-jobs-watch');
          health.pass(CAPACITY_CHECK);
        });
      }
      return startup.run();
    },
    async stop() {
      startup.stop();
      capacity.stop();
      rest.close();
    },
  };
}

/** `job-robot launcher`: serves on PORT until SIGTERM, then drains and exits. */
export async function main(_argv: string[]): Promise<void> {
  const config = loadLauncherConfig();
  const log = createLogger(config.logLevel, 'launcher');
  const rest = new KubeRest(credentialsAtStart(), { timeoutMs: config.kubeTimeoutSeconds * 1000 });
  const parts = createLauncher(config, { rest, log, registry: createRegistry('launcher') });
  startupPhase('configured');
  const running = await listen(parts.app, config.port);
  startupPhase('listening');
  // The handler is in place before the 'listening' line: whoever waits for that line may stop us at once.
  onShutdown(log, parts.health, running, () => parts.stop());
  parts.auth.announce('create Jobs');
  log.info({ port: running.port, namespace: parts.namespace }, 'launcher listening');
  void parts.start();
}

/**
 * The Job a small event gets. A template that alone breaks a limit every Job must keep (an exec's
 * size, the annotations' total) would refuse every event: that is a configuration error.
 */
function sampleJob(launcher: Launcher, sample: CloudEvent<unknown>): V1Job {
  try {
    return launcher.plan(sample).job;
  } catch (err) {
    if (err instanceof PayloadTooLarge) throw new ConfigError(`JOB_TEMPLATE_PATH: even the smallest event's Job is too large: ${err.message}`, ['JOB_TEMPLATE_PATH']);
    throw err;
  }
}
