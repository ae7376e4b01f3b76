/**
 * `job-robot results`: what became of each queue item. A Knative ApiServerSource watches
 * job-robot's Jobs and sends each change to the Broker; the Trigger job-robot-results delivers them
 * here. Each is recorded in Redis beside the queue (function/queue/results.ts), and a Job that
 * finished is answered with an outcome event the Broker passes on to users' Triggers.
 */
import { SenderAuth } from '../auth/gate.ts';
import { DEFAULT_INSTANCE_MARK } from '../events.ts';
import { Health } from '../http/health.ts';
import { createRegistry } from '../http/metrics.ts';
import { listen, onShutdown } from '../http/server.ts';
import { credentialsAtStart, namespaceOf } from '../kube/credentials.ts';
import { KubeRest } from '../kube/rest.ts';
import { createLogger } from '../log.ts';
import { connect } from '../queue/connection.ts';
import { watchConnection } from '../queue/diagnosis.ts';
import { Results } from '../queue/results.ts';
import { resultsApp } from './app.ts';
import { loadResultsConfig } from './config.ts';
import { ResultsMetrics } from './metrics.ts';

export async function main(_argv: string[]): Promise<void> {
  const config = loadResultsConfig();
  const log = createLogger(config.logLevel, 'results');
  const health = new Health(['redis']);
  const client = connect(config.redis, 'job-robot-results');
  watchConnection(client, 'redis', health, log);
  const registry = createRegistry('results');
  // The API server is reached only for the issuer's keys.
  const rest = config.auth.enabled ? new KubeRest(credentialsAtStart(), { timeoutMs: config.kubeTimeoutSeconds * 1000 }) : undefined;
  const auth = SenderAuth.from(config.auth, { rest, namespace: namespaceOf(config.namespace, rest), log, registry });
  const app = resultsApp({
    senders: auth.senders(),
    client,
    results: new Results(client, config.keys, config.results),
    instance: config.instance,
    mark: config.instance ?? DEFAULT_INSTANCE_MARK,
    health,
    registry,
    metrics: new ResultsMetrics(registry),
    log,
    maxRequestBytes: config.maxRequestBytes,
  });
  const running = await listen(app, config.port);
  // The handler is in place before the 'listening' line: whoever waits for that line may stop us at once.
  onShutdown(log, health, running, async () => {
    rest?.close();
    await client.quit().catch(() => undefined);
  });
  auth.announce('record results');
  void auth.warm();
  log.info(
    { port: running.port, records: `${config.keys.resultPrefix}<event id>`, stream: config.keys.results, instance: config.instance ?? '(none)', maxRequestBytes: config.maxRequestBytes },
    'results function listening',
  );
}
