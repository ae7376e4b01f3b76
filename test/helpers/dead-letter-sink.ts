/** The dead-letter sink on a local port, as `job-robot dead-letter` starts it, and what the Broker sends it. */
import type { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { SenderAuth } from '../../function/auth/gate.ts';
import { deadLetterApp } from '../../function/dead-letter/app.ts';
import { loadDeadLetterConfig, type DeadLetterConfig } from '../../function/dead-letter/config.ts';
import { Health } from '../../function/http/health.ts';
import { listen } from '../../function/http/server.ts';
import { createLogger } from '../../function/log.ts';
import { connect, type RedisClient } from '../../function/queue/connection.ts';
import { uniquePrefix } from './redis.ts';
import { restOf } from '../../function/kube/client.ts';

/** A dead-letter sink on a free local port, writing to a unique queue's dead-letter stream. */
export interface SinkUnderTest {
  url: string;
  client: RedisClient;
  key: string;
  config: DeadLetterConfig;
  close(): Promise<void>;
}

/**
 * Starts the sink's app as `job-robot dead-letter` would, with `env` on top of the defaults
 * (sender authentication off unless `env` turns it on; then `kc` reads the issuer's keys).
 */
export async function startDeadLetterSink(redisUrl: string, env: Record<string, string> = {}, now?: () => Date, kc?: KubeConfig): Promise<SinkUnderTest> {
  const config = loadDeadLetterConfig({ REDIS_URL: `${redisUrl}/0`, QUEUE_KEY: `${uniquePrefix('dls')}queue`, OIDC_AUTHENTICATION: 'disabled', ...env });
  const client = connect(config.redis, 'test-dead-letter');
  await client.ping();
  const registry = new Registry();
  const log = createLogger('silent');
  const rest = kc ? restOf(kc, 10_000) : undefined;
  const auth = SenderAuth.from(config.auth, { rest, namespace: config.namespace ?? 'default', log, registry });
  const app = deadLetterApp({
    senders: auth.senders(),
    client,
    keys: config.keys,
    results: config.results,
    itemType: config.itemType,
    health: new Health(),
    registry,
    log,
    maxRequestBytes: config.maxRequestBytes,
    maxItemBytes: config.maxItemBytes,
    ...(now ? { now } : {}),
  });
  const server = await listen(app, 0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${server.port}/`,
    client,
    key: config.keys.deadLetter,
    config,
    async close() {
      await server.close(1000);
      rest?.close();
      client.disconnect();
    },
  };
}

/** The ce- headers of an event the Broker dead-letters after the launcher answered `code`. */
export function knativeHeaders(id: string, code = 503, answer = '{"error":"too-many-active-jobs"}'): Record<string, string> {
  return {
    'ce-specversion': '1.0',
    'ce-id': id,
    'ce-source': 'redis://redis:6379/0/job-robot:queue',
    'ce-type': 'dev.job-robot.queue.item',
    'ce-knativeerrorcode': String(code),
    'ce-knativeerrordest': 'http://job-robot-launcher.job-robot.svc.cluster.local',
    'ce-knativeerrordata': Buffer.from(answer).toString('base64'),
  };
}
