/**
 * A private Redis Cluster or Sentinel deployment as a bridge sees it: the environment that reaches
 * it, a client that follows failovers, where a queue's master is and how to kill it; optionally
 * with passwords and TLS only. `useDeployment` gives a suite (or each test) one.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { startRedisCluster, type RedisClusterServers } from './redis-cluster.ts';
import { clientOptions, type RedisSecurity } from './redis-security.ts';
import { SENTINEL_MASTER, startRedisSentinel, type RedisSentinelServers, type SentinelSecurity } from './redis-sentinel.ts';

type Takeover = { killed: number; promoted: number };

export interface RedisDeployment {
  /** What the bridges are told to reach it (seeds or sentinels, password and CA). */
  env: Record<string, string>;
  /** A client that follows failovers, for producing and checking. */
  client: Redis | Cluster;
  /** Password and TLS for a direct connection to one of its servers. */
  producer: RedisOptions;
  /** The port of the master that holds `queue` now. */
  masterPort(queue: string): Promise<number>;
  /** Kills that master with SIGKILL and resolves once a replica took over. */
  killMaster(queue: string): Promise<Takeover>;
  /** Closes the client and stops every server. */
  stop(): Promise<void>;
}

/** What the bridge's password and TLS variables say for `security`. */
function securityEnv(security: RedisSecurity): Record<string, string> {
  return {
    ...(security.password ? { REDIS_PASSWORD: security.password } : {}),
    ...(security.tls ? { REDIS_TLS: 'true', REDIS_TLS_CA: security.tls.ca } : {}),
  };
}

/** Three masters and three replicas. */
export async function startClusterDeployment(security: RedisSecurity = {}): Promise<RedisDeployment & { cluster: RedisClusterServers }> {
  const cluster = await startRedisCluster(1_000, security);
  const nodes = cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  const client = new Cluster(nodes, { retryDelayOnFailover: 300, maxRedirections: 200, redisOptions: clientOptions(security) });
  client.on('error', () => undefined); // it follows a failover on its own
  return {
    cluster,
    env: { REDIS_CLUSTER_NODES: cluster.seeds, ...securityEnv(security) },
    client,
    producer: clientOptions(security),
    masterPort: (queue) => cluster.masterOf(queue),
    killMaster: (queue) => cluster.killMasterOf(queue),
    async stop() {
      client.disconnect();
      await cluster.stop();
    },
  };
}

/** A master, a replica and three sentinels (with their own password when `security` has one). */
export async function startSentinelDeployment(security: SentinelSecurity = {}): Promise<RedisDeployment & { sentinel: RedisSentinelServers }> {
  const sentinel = await startRedisSentinel(1_000, security);
  const { sentinelPassword, tls } = security;
  const client = new Redis({
    sentinels: sentinel.sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
    name: SENTINEL_MASTER,
    ...(sentinelPassword ? { sentinelPassword } : {}),
    ...(tls ? { sentinelTLS: { ca: tls.ca }, enableTLSForSentinelMode: true } : {}),
    ...clientOptions(security),
    maxRetriesPerRequest: null,
  });
  client.on('error', () => undefined); // it reconnects through the sentinels on its own
  return {
    sentinel,
    env: {
      REDIS_SENTINELS: sentinel.sentinels,
      REDIS_SENTINEL_MASTER: SENTINEL_MASTER,
      ...(sentinelPassword ? { REDIS_SENTINEL_PASSWORD: sentinelPassword } : {}),
      ...securityEnv(security),
    },
    client,
    producer: clientOptions(security),
    masterPort: () => sentinel.masterPort(),
    killMaster: () => sentinel.killMaster(),
    async stop() {
      client.disconnect();
      await sentinel.stop();
    },
  };
}

/**
 * Mocha hooks: a deployment from `start` before the suite, or before each test with `each` (a
 * failover leaves one master without a replica), stopped after it. Register `useSink` first, so
 * that its bridges are killed before their Redis goes. Read `.redis` inside tests.
 */
export function useDeployment<D extends RedisDeployment>(start: () => Promise<D>, o: { each?: boolean } = {}): { redis: D } {
  const ctx = {} as { redis: D };
  (o.each ? beforeEach : before)(async function () {
    ctx.redis = await start();
  });
  (o.each ? afterEach : after)(async function () {
    await ctx.redis?.stop();
  });
  return ctx;
}
