/**
 * Where the bridge's Redis is and how to connect to it: a single server, a Redis Cluster (seed
 * nodes) or a Sentinel-managed master (sentinels + master name). `connect` returns the matching
 * ioredis client. Nothing else in the bridge looks at connection details.
 */
import { rootCertificates } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.ts';
import { backoffDelay } from './backoff.ts';

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
}

export type RedisTarget = StandaloneTarget | ClusterTarget | SentinelTarget;

/** The client the bridge uses: one server (standalone or via Sentinel) or a cluster. */
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
  return {
    ...(target.kind === 'standalone' ? { host: target.host, port: target.port } : {}),
    ...(target.kind === 'cluster' ? {} : { db: target.db }),
    ...(target.kind === 'sentinel'
      ? {
          sentinels: target.sentinels,
          name: target.master,
          sentinelUsername: target.sentinelUsername,
          sentinelPassword: target.sentinelPassword,
          // Sentinels are asked again with the same backoff while none answers.
          sentinelRetryStrategy: reconnectDelay,
        }
      : {}),
    username: target.username,
    password: target.password,
    // Cluster and Sentinel nodes are reached by the addresses Redis announces, so TLS names them
    // per connection (ioredis sets the servername from the host it dials).
    tls: target.tls
      ? {
          ...(target.kind === 'standalone' ? { servername: target.host } : {}),
          ca: target.ca ? [...rootCertificates, target.ca] : undefined,
        }
      : undefined,
    connectionName,
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

function hostPort({ host, port }: HostPort): string {
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

/**
 * Readiness follows the connection: ready after Redis answered, failing while it is away. Logs
 * each outage once, not once per reconnect attempt.
 */
export function watchConnection(
  client: RedisClient,
  check: string,
  health: { pass(check: string): void; fail(check: string, reason: string): void },
  log: Logger,
): void {
  let down = false;
  client.on('ready', () => {
    health.pass(check);
    if (down) log.info({ connection: check }, 'redis connection restored');
    down = false;
  });
  client.on('error', (err: Error) => {
    health.fail(check, err.message);
    if (!down) log.warn({ connection: check, err: err.message }, 'redis connection failed; retrying with backoff');
    down = true;
  });
  client.on('close', () => health.fail(check, 'connection closed'));
}

/** Characters a URI path segment may carry unescaped (RFC 3986 pchar minus pct-encoded). */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

/** Percent-encodes what a URI path segment cannot hold, keeping `:` and `@` readable. */
export function encodePathSegment(segment: string): string {
  let out = '';
  for (const ch of segment) {
    out += PCHAR.test(ch) ? ch : percentEncode(ch);
  }
  return out;
}

/** `%XX` for each UTF-8 byte of `text`. */
export function percentEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/**
 * The CloudEvent source of a queue. Never carries credentials, and does not change with TLS or a
 * failover (the source is part of each Job's identity):
 *
 * - a single server: `redis://host:port/db/key`;
 * - Sentinel: `redis+sentinel://master-name/db/key` (the master name survives failovers);
 * - Cluster: `redis+cluster://host:port/key` naming the lowest seed node, so reordering the seeds
 *   changes nothing. Replacing the seeds would: pin EVENT_SOURCE for that.
 */
export function sourceUrl(target: RedisTarget, key: string): string {
  const path = encodePathSegment(key);
  switch (target.kind) {
    case 'standalone':
      return `redis://${hostPort(target)}/${target.db}/${path}`;
    case 'sentinel':
      return `redis+sentinel://${encodeURIComponent(target.master)}/${target.db}/${path}`;
    case 'cluster': {
      const seed = target.nodes.map(hostPort).sort()[0]!;
      return `redis+cluster://${seed}/${path}`;
    }
  }
}
