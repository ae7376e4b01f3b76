/**
 * What went wrong with a Redis connection, in words an operator can act on. ioredis reports a
 * cluster's or the sentinels' failures only as a summary ("Failed to refresh slots cache.", "All
 * sentinels are unreachable"); one direct connection to a node or sentinel finds the cause, and a
 * hint names the variables to fix for a refused password or an untrusted certificate.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.ts';
import { UNTRUSTED } from '../tls-errors.ts';
import { hostPort, type HostPort, type RedisClient } from './connection.ts';
import { guardedConnector } from './socket-guard.ts';

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
    Connector: guardedConnector(false),
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
