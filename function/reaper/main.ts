/** `job-robot reaper`: the reaper as a Knative function, wired from its configuration. */
import { SenderAuth } from '../auth/gate.ts';
import { Health } from '../http/health.ts';
import { createRegistry } from '../http/metrics.ts';
import { listen, onShutdown } from '../http/server.ts';
import { credentialsAtStart, namespaceOf } from '../kube/credentials.ts';
import { restJobs } from '../kube/jobs-api.ts';
import { KubeRest } from '../kube/rest.ts';
import { createLogger } from '../log.ts';
import { AccessWatch, PERMISSIONS_CHECK } from './access.ts';
import { reaperApp } from './app.ts';
import { loadReaperConfig } from './config.ts';
import { QueueInFlight } from './in-flight.ts';
import { ReaperMetrics } from './metrics.ts';
import { Reaper } from './reap.ts';
import { QueueResults } from './results.ts';
import { Runs } from './runs.ts';

export async function main(_argv: string[]): Promise<void> {
  const config = loadReaperConfig();
  const log = createLogger(config.logLevel, 'reaper');
  // One pool of connections for every call: the reaper's lists and deletes, the permission
  // checks and the senders' token checks.
  const rest = new KubeRest(credentialsAtStart(), { timeoutMs: config.kubeTimeoutSeconds * 1000 });
  const namespace = namespaceOf(config.namespace, rest);
  const policy = config.policy;
  const queue = config.queue;
  const inFlight = queue ? new QueueInFlight(queue) : undefined;
  const results = queue && inFlight ? new QueueResults(queue, config.results, {}, inFlight.client) : undefined;

  const reaper = new Reaper(restJobs(rest), {
    namespace,
    ...(config.instance ? { instance: config.instance } : {}),
    policy,
    concurrency: config.concurrency,
    pageSize: config.pageSize,
    dryRun: config.dryRun,
    ...(inFlight ? { inFlight } : {}),
    ...(results ? { results } : {}),
    log,
  });
  const health = new Health([PERMISSIONS_CHECK]);
  const registry = createRegistry('reaper');
  const access = new AccessWatch(rest, namespace, health, log);
  // Aborted first on SIGTERM/SIGINT, so a run in flight stops scheduling deletions and answers
  // before onShutdown's grace period runs out.
  const shutdown = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => shutdown.abort());
  const runs = new Runs({ reaper, metrics: new ReaperMetrics(registry), log, onForbidden: (fix) => access.lost(fix), signal: shutdown.signal });

  const auth = SenderAuth.from(config.auth, { rest, namespace, log, registry });
  const running = await listen(reaperApp({ senders: auth.senders(), runs, health, registry, log }), config.port);
  // The handler is in place before the 'listening' line: whoever waits for that line may stop us at once.
  onShutdown(log, health, running, async () => {
    access.stop();
    rest.close();
    await Promise.all([inFlight?.close(), results?.close()]);
  });
  log.info(
    {
      port: running.port,
      namespace,
      selector: reaper.selector,
      policy,
      dryRun: reaper.dryRun,
      concurrency: config.concurrency,
      // Where expired Jobs are checked for a queue item still in flight (none: no Redis configured).
      inFlightCheck: inFlight ? { queue: inFlight.describe, source: inFlight.source } : 'off',
      // Where the results of that queue's Jobs are checked (and recorded) before they go.
      resultsBackstop: results ? { results: results.describe, retentionSeconds: config.results.retentionSeconds } : 'off',
    },
    'reaper listening',
  );
  auth.announce('start reaper runs');
  void auth.warm();
  access.start();
}
