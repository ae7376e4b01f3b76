/**
 * Where the queue's Redis is and how to connect to it: a single server, a Redis Cluster (seed
 * nodes) or a Sentinel-managed master (sentinels + master name). `connect` returns the matching
 * ioredis client. Nothing outside function/queue/ looks at connection details.
 */
import { rootCertificates } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { backoffDelay } from '../async/backoff.ts';
import { guardedConnector } from './socket-guard.ts';

/** Credentials and TLS of the data nodes, the same for every kind. */
interface NodeAuth {
  username?: string | undefined;
  password?: string | undefined;
  /** TLS is always verified; `ca` adds a PEM bundle to the system roots. */
  tls: boolean;
  ca?: string | undefined;
}

export interface HostPort {
  host: string;
  port: number;
}

export interface StandaloneTarget extends NodeAuth, HostPort {
  kind: 'standalone';
  db: number;
}

/** Redis Cluster: seed nodes; the client discovers the rest and follows MOVED/ASK and failovers. */
export interface ClusterTarget extends NodeAuth {
  kind: 'cluster';
  nodes: HostPort[];
}

/** A master watched by Sentinel: the client asks the sentinels where `master` is, after every failover. */
export interface SentinelTarget extends NodeAuth {
  kind: 'sentinel';
  sentinels: HostPort[];
  master: string;
  db: number;
  sentinelUsername?: string | undefined;
  sentinelPassword?: string | undefined;
  /** TLS to the sentinels themselves (verified with `ca` too); `tls` is the master's. */
  sentinelTls: boolean;
}

export type RedisTarget = StandaloneTarget | ClusterTarget | SentinelTarget;

/** A connection to the queue's Redis: one server (standalone or via Sentinel) or a cluster. */
export type RedisClient = Redis | Cluster;

/** Reconnect delay after `times` failed attempts: exponential from 100 ms to 5 s, with jitter. */
export function reconnectDelay(times: number): number {
  return backoffDelay(times, 100, 5_000);
}

/**
 * ioredis options for `target`: commands wait through reconnects instead of failing. A `blocking`
 * connection (BLMOVE, XREADGROUP BLOCK) also gives up on a blocking command the server has not
 * answered within its own timeout plus a grace period (a half-open connection), and claims again.
 */
export function redisOptions(target: RedisTarget, connectionName: string, blocking = false): RedisOptions {
  // Cluster and Sentinel nodes are reached by the addresses Redis announces, so TLS names them
  // per connection (ioredis sets the servername from the host it dials).
  const tls = (on: boolean) =>
    on ? { ...(target.kind === 'standalone' ? { servername: target.host } : {}), ca: target.ca ? [...rootCertificates, target.ca] : undefined } : undefined;
  return {
    ...(target.kind === 'standalone' ? { host: target.host, port: target.port } : {}),
    ...(target.kind === 'cluster' ? {} : { db: target.db }),
    ...(target.kind === 'sentinel'
      ? {
          sentinels: target.sentinels,
          name: target.master,
          sentinelUsername: target.sentinelUsername,
          sentinelPassword: target.sentinelPassword,
          sentinelTLS: tls(target.sentinelTls),
          // Without this, ioredis dials the master the sentinels name in plain TCP, whatever `tls` says.
          enableTLSForSentinelMode: target.tls,
          // Sentinels are asked again with the same backoff while none answers.
          sentinelRetryStrategy: reconnectDelay,
        }
      : {}),
    username: target.username,
    password: target.password,
    tls: tls(target.tls),
    connectionName,
    // Every socket keeps an 'error' listener, so a second error on a failing socket cannot crash us.
    Connector: guardedConnector(target.kind === 'sentinel'),
    // RESP2 everywhere: reply shapes (XREADGROUP, XINFO) do not depend on the server's protocol.
    protocol: 2,
    // A lost connection is retried forever with backoff; commands queue until it is back, so a
    // Redis outage pauses the bridge instead of crashing it (and never loses a claim).
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
    // The bridge batches its own commands (claims carry acks); auto-pipelining would only add
    // a deferred write per command.
    enableAutoPipelining: false,
    keepAlive: 10_000,
    ...(blocking ? { blockingTimeout: 30_000, blockingTimeoutGrace: 5_000 } : {}),
  };
}

/**
 * ioredis Cluster options: every command goes to the master of its key's slot (the bridge never
 * reads from replicas: its scripts write). While a master fails over, commands sent to it wait and
 * are retried against the slot's new owner instead of failing: after `retryDelayOnFailover` for a
 * closed connection, after `retryDelayOnClusterDown` while the cluster reports CLUSTERDOWN. The
 * redirection budget covers a failover of about a minute.
 */
export function clusterOptions(target: ClusterTarget, connectionName: string, blocking = false, overrides: RedisOptions = {}): ClusterOptions {
  const { retryStrategy, ...redis } = { ...redisOptions(target, connectionName, blocking), ...overrides };
  return {
    redisOptions: redis,
    scaleReads: 'master',
    clusterRetryStrategy: retryStrategy === undefined ? reconnectDelay : retryStrategy,
    enableOfflineQueue: overrides.enableOfflineQueue ?? true,
    enableReadyCheck: true,
    lazyConnect: overrides.lazyConnect ?? false,
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 100,
    maxRedirections: 200,
    slotsRefreshTimeout: 2_000,
    enableAutoPipelining: false,
  };
}

/** A connected client; `name` shows in CLIENT LIST. `overrides` adjust ioredis options (e.g. one-shot checks). */
export function connect(target: RedisTarget, name: string, blocking = false, overrides: RedisOptions = {}): RedisClient {
  if (target.kind === 'cluster') return new Cluster(target.nodes, clusterOptions(target, name, blocking, overrides));
  return new Redis({ ...redisOptions(target, name, blocking), ...overrides });
}

/** `host:port`, an IPv6 host in brackets. */
export function hostPort({ host, port }: HostPort): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

/** Where the target is, for people: no credentials. */
export function describeTarget(target: RedisTarget): string {
  const scheme = target.tls ? 'rediss' : 'redis';
  switch (target.kind) {
    case 'standalone':
      return `${scheme}://${hostPort(target)}/${target.db}`;
    case 'cluster':
      return `${scheme} cluster seeded by ${target.nodes.map(hostPort).join(',')}`;
    case 'sentinel':
      return `${scheme} master "${target.master}" (db ${target.db}) via sentinels ${target.sentinels.map(hostPort).join(',')}`;
  }
}
