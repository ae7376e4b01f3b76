/**
 * Where the queue's Redis is and how to connect to it: a single server, a Redis Cluster (seed
 * nodes) or a Sentinel-managed master (sentinels + master name). `connect` returns the matching
 * ioredis client. Nothing outside function/queue/ looks at connection details.
 */
import { rootCertificates } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.ts';
import { backoffDelay } from '../async/backoff.ts';
import { UNTRUSTED } from '../tls-errors.ts';

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

/** An error that says what went wrong: a Redis reply (WRONGPASS, NOAUTH) or a coded socket/TLS failure. */
export function telling(err: Error): boolean {
  return err.name === 'ReplyError' || typeof (err as NodeJS.ErrnoException).code === 'string';
}

/**
 * The variables to fix for a failure that is configuration, not an outage; undefined otherwise.
 * `from` says whose answer it was: a data node's or a sentinel's.
 */
export function connectionHint(err: Error, from: 'node' | 'sentinel' = 'node'): string | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && UNTRUSTED.has(code)) {
    return `the ${from === 'sentinel' ? "sentinel's" : "server's"} certificate is not trusted: check REDIS_TLS_CA`;
  }
  if (err.name === 'ReplyError' && /^(WRONGPASS|NOAUTH)\b/.test(err.message)) {
    return from === 'sentinel'
      ? 'the sentinel refused the credentials: check REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD'
      : 'Redis refused the credentials: check REDIS_USERNAME and REDIS_PASSWORD';
  }
  return undefined;
}

export interface Cause {
  where: string;
  err: Error;
  from: 'node' | 'sentinel';
}

/** Whom to ask directly, and how, when ioredis sums failures up without their cause. */
interface Probe {
  address: HostPort;
  auth: Pick<RedisOptions, 'username' | 'password' | 'tls'>;
  from: 'node' | 'sentinel';
}

/**
 * The client's sentinels (the first one), or the cluster node that failed last: ioredis drops the
 * errors of its connections to both (it asks them over throwaway connections that ignore errors).
 */
export function probeOf(client: RedisClient, cause: Cause | undefined): Probe | undefined {
  if (client instanceof Cluster) {
    const key = cause?.where ?? '';
    const colon = key.lastIndexOf(':');
    if (colon < 0) return undefined;
    const { username, password, tls } = client.options.redisOptions ?? {};
    return { address: { host: key.slice(0, colon), port: Number(key.slice(colon + 1)) }, auth: { username, password, tls }, from: 'node' };
  }
  const first = client.options.sentinels?.[0];
  if (!first) return undefined;
  const { sentinelUsername: username, sentinelPassword: password, sentinelTLS: tls } = client.options;
  return { address: { host: first.host ?? 'localhost', port: first.port ?? 26379 }, auth: { username, password, tls }, from: 'sentinel' };
}

/** One direct connection with the same credentials and TLS, and PING: the error it meets, if any. */
export async function probeConnection({ address, auth, from }: Probe, timeoutMs = 3_000): Promise<Cause | undefined> {
  const client = new Redis({
    ...address,
    ...auth,
    lazyConnect: true,
    enableReadyCheck: false,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
  });
  const errors: Error[] = [];
  client.on('error', (err: Error) => errors.push(err));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    errors.push(err as Error);
  } finally {
    client.disconnect();
  }
  const err = errors.find(telling) ?? errors[0];
  return err ? { where: `${from === 'sentinel' ? 'sentinel ' : ''}${hostPort(address)}`, err, from } : undefined;
}

/**
 * Readiness follows the connection: ready after Redis answered, failing while it is away, with the
 * reason. Logs each outage once, not once per reconnect attempt. Where ioredis reports only a
 * summary ("Failed to refresh slots cache.", "All sentinels are unreachable ... Connection is
 * closed."), one direct connection to a node or sentinel finds the cause, which is named with it,
 * and a hint names the variables to fix for a refused password or an untrusted certificate.
 */
export function watchConnection(
  client: RedisClient,
  check: string,
  health: { pass(check: string): void; fail(check: string, reason: string): void },
  log: Logger,
): void {
  let down = false;
  let logged = false;
  let failed = false;
  let cause: Cause | undefined;
  let probe: 'none' | 'running' | 'done' = 'none';
  if (client instanceof Cluster) {
    client.on('node error', (err: Error, key: string) => {
      if (!cause || telling(err) || !telling(cause.err)) cause = { where: key, err, from: 'node' };
    });
  }
  const report = (err: Error) => {
    const why = cause && !telling(err) ? cause : undefined;
    const message = why ? `${err.message} (${why.where}: ${why.err.message})` : err.message;
    const hint = why ? connectionHint(why.err, why.from) : connectionHint(err);
    health.fail(check, hint ? `${message}; ${hint}` : message);
    failed = down = true;
    if (!logged) log.warn({ connection: check, err: message, ...(hint ? { hint } : {}) }, 'redis connection failed; retrying with backoff');
    logged = true;
  };
  client.on('ready', () => {
    health.pass(check);
    if (down) log.info({ connection: check }, 'redis connection restored');
    down = logged = failed = false;
    cause = undefined;
    probe = 'none';
  });
  client.on('error', (err: Error) => {
    const explained = telling(err) || (cause !== undefined && telling(cause.err));
    const target = explained || probe !== 'none' ? undefined : probeOf(client, cause);
    if (probe !== 'running' && !target) return report(err);
    health.fail(check, err.message);
    failed = down = true;
    if (!target) return;
    probe = 'running';
    void probeConnection(target).then((found) => {
      probe = 'done';
      if (found && telling(found.err)) cause = found;
      if (client.status !== 'ready') report(err);
    });
  });
  // A close after an error keeps the error as the reason.
  client.on('close', () => {
    if (!failed) health.fail(check, 'connection closed');
  });
}
