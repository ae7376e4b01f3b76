/**
 * `job-robot dead-letter`: the Broker's and Trigger's dead-letter sink. Events Knative could not
 * deliver to the launcher land on the queue's Redis dead-letter stream, beside the items the bridge
 * dead-lettered, so operators find every undelivered item in one place.
 */
import { connect } from '../queue/connection.ts';
import { watchConnection } from '../queue/diagnosis.ts';
import { SenderAuth } from '../auth/gate.ts';
import { Health } from '../http/health.ts';
import { credentialsAtStart, namespaceOf } from '../kube/credentials.ts';
import { KubeRest } from '../kube/rest.ts';
import { createRegistry } from '../http/metrics.ts';
import { listen, onShutdown } from '../http/server.ts';
import { createLogger } from '../log.ts';
import { deadLetterApp } from './app.ts';
import { loadDeadLetterConfig } from './config.ts';

export async function main(_argv: string[]): Promise<void> {
  const config = loadDeadLetterConfig();
  const log = createLogger(config.logLevel, 'dead-letter');
  const health = new Health(['redis']);
  const client = connect(config.redis, 'job-robot-dead-letter');
  watchConnection(client, 'redis', health, log);
  const registry = createRegistry('dead-letter');
  // The API server is reached only for the issuer's keys.
  const rest = config.auth.enabled ? new KubeRest(credentialsAtStart(), { timeoutMs: config.kubeTimeoutSeconds * 1000 }) : undefined;
  const auth = SenderAuth.from(config.auth, { rest, namespace: namespaceOf(config.namespace, rest), log, registry });
  const app = deadLetterApp({ senders: auth.senders(), client, keys: config.keys, results: config.results, itemType: config.itemType, health, registry, log, maxRequestBytes: config.maxRequestBytes, maxItemBytes: config.maxItemBytes });
  const running = await listen(app, config.port);
  // The handler is in place before the 'listening' line: whoever waits for that line may stop us at once.
  onShutdown(log, health, running, async () => {
    rest?.close();
    await client.quit().catch(() => undefined);
  });
  auth.announce('append to the dead-letter stream');
  void auth.warm();
  log.info({ port: running.port, key: config.keys.deadLetter, maxRequestBytes: config.maxRequestBytes, maxItemBytes: config.maxItemBytes }, 'dead-letter sink listening');
}
