/**
 * `job-robot bridge`: the Redis source adapter, run as a Knative ContainerSource. Wires the
 * configuration, the sink token, Redis, the sender and the loop together, serves /health and
 * /metrics on PORT, and on SIGTERM stops claiming, finishes or hands back what it holds, and exits.
 */
import express from 'express';
import { withTimeout } from '../async/wait.ts';
import { Health } from '../http/health.ts';
import { createRegistry, metricsRouter } from '../http/metrics.ts';
import { listen, onShutdown } from '../http/server.ts';
import { createLogger, type Logger } from '../log.ts';
import { Bridge } from './bridge.ts';
import { loadBridgeConfig, type BridgeConfig } from './config.ts';
import { queueKeys } from '../queue/keys.ts';
import { ListSource } from '../queue/list-source.ts';
import { BridgeMetrics } from './metrics.ts';
import { connect, type RedisClient } from '../queue/connection.ts';
import { watchConnection } from '../queue/diagnosis.ts';
import { Sender } from './sender.ts';
import { SinkToken } from './sink-token.ts';
import type { Buried } from '../queue/intake.ts';
import type { Source } from '../queue/source.ts';
import { StreamSource } from '../queue/stream-source.ts';

/** How long a metrics scrape waits for Redis to report the queue depth. */
const DEPTH_TIMEOUT_MS = 1_000;

export function createSource(
  config: BridgeConfig,
  client: RedisClient,
  blocking: RedisClient,
  log: Logger,
  onUnreplicated: (items: number) => void = () => undefined,
  onBuried: (letters: Buried[]) => void = () => undefined,
): Source {
  const keys = queueKeys(config.queueKey, config.deadLetterKey);
  const { maxItemBytes } = config.intake;
  const intake = {
    ...config.intake,
    eventSource: config.event.source,
    onBuried: (letters: Buried[]) => {
      for (const { id, reason, bytes } of letters) log.warn({ eventId: id, reason, bytes, maxItemBytes }, 'dead-lettered in Redis before delivery');
      onBuried(letters);
    },
    onReplyCut: (bytes: number) =>
      log.warn({ bytes, maxItemBytes }, "a blocking read's reply passed MAX_ITEM_BYTES; dropped its connection, and the item is dead-lettered in Redis"),
  };
  const common = { client, blocking, keys, consumer: config.consumer, leaseMs: config.leaseMs, intake };
  const { replicas, timeoutMs } = config.claimWait;
  const onShort = (items: number, acknowledged: number) => {
    onUnreplicated(items);
    log.warn({ items, acknowledged, wanted: replicas, timeoutMs }, 'claim not acknowledged by enough replicas in time; sending it anyway');
  };
  return config.mode === 'list'
    ? new ListSource({ ...common, pushEnd: config.listEnd, idField: config.idField, ...(replicas > 0 ? { replicas: { count: replicas, timeoutMs, onShort } } : {}) })
    : new StreamSource({ ...common, ...config.stream });
}

export async function main(_argv: string[]): Promise<void> {
  const config = loadBridgeConfig(process.env);
  const log = createLogger(config.logLevel, 'bridge');
  let metrics: BridgeMetrics | undefined;
  // Before anything connects: an unusable token file stops the start.
  const token = await SinkToken.load({
    ...config.token,
    log,
    onReload: (result) => metrics?.tokenReloads.inc({ result }),
    onRefused: (status) => metrics?.identityRefusals.inc({ status: String(status) }),
  });
  const health = new Health(['redis', 'redis-blocking']);

  const client = connect(config.redis, `job-robot-bridge:${config.consumer}`);
  const blocking = connect(config.redis, `job-robot-bridge:${config.consumer}:claim`, true);
  watchConnection(client, 'redis', health, log);
  watchConnection(blocking, 'redis-blocking', health, log);

  const source = createSource(
    config, client, blocking, log,
    (items) => metrics?.unreplicated.inc(items),
    (letters) => letters.forEach(({ reason }) => metrics?.deadLettered.inc({ reason })),
  );
  const sender = new Sender({
    sink: config.sink,
    timeoutMs: config.sendTimeoutMs,
    connections: config.concurrency,
    caCerts: config.caCerts,
    authorization: () => token.header(),
  });
  const registry = createRegistry('bridge');
  let bridge: Bridge | undefined;
  metrics = new BridgeMetrics(registry, {
    depth: () => (client.status === 'ready' ? withTimeout(source.depth(), DEPTH_TIMEOUT_MS) : Promise.resolve(undefined)),
    inFlight: () => bridge?.inFlight() ?? 0,
    oldestClaimAge: () => bridge?.oldestClaimAge() ?? 0,
  });
  bridge = new Bridge({
    source,
    sender,
    log,
    metrics,
    concurrency: config.concurrency,
    maxAttempts: config.maxAttempts,
    backoff: config.backoff,
    leaseMs: config.leaseMs,
    event: config.event,
    identity: token,
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(health.router());
  app.use(metricsRouter(registry));
  const running = await listen(app, config.port);
  // The handler is in place before the 'listening' line: whoever waits for that line may stop us at once.
  const stopping = bridge;
  onShutdown(log, health, running, async () => {
    await stopping.stop(config.shutdownGraceMs);
    sender.close();
    token.close();
    client.disconnect();
    blocking.disconnect();
  });
  log.info(
    {
      port: running.port,
      mode: config.mode,
      queue: config.queueKey,
      consumer: config.consumer,
      source: config.event.source,
      sink: redactUrl(config.sink),
      concurrency: config.concurrency,
    },
    'bridge listening',
  );

  await bridge.start();
}

/** The sink without credentials, for the log. */
function redactUrl(text: string): string {
  const url = new URL(text);
  url.username = '';
  url.password = '';
  return url.toString();
}
