/**
 * Where the bridge's Redis is and how to connect to it. Today a single server; Redis Cluster (seed
 * nodes) and Sentinel (sentinels + master name) join `RedisTarget` as further kinds, and `connect`
 * returns the matching ioredis client. Nothing else in the bridge looks at connection details.
 */
import { rootCertificates } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.ts';
import { backoffDelay } from './backoff.ts';

export interface StandaloneTarget {
  kind: 'standalone';
  host: string;
  port: number;
  db: number;
  username?: string | undefined;
  password?: string | undefined;
  /** TLS is always verified; `ca` adds a PEM bundle to the system roots. */
  tls: boolean;
  ca?: string | undefined;
}

export type RedisTarget = StandaloneTarget;

/** The client the bridge uses. Becomes `Redis | Cluster` when cluster targets arrive. */
export type RedisClient = Redis;

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
    host: target.host,
    port: target.port,
    db: target.db,
    username: target.username,
    password: target.password,
    tls: target.tls
      ? { servername: target.host, ca: target.ca ? [...rootCertificates, target.ca] : undefined }
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

/** A connected client; `name` shows in CLIENT LIST. `overrides` adjust ioredis options (e.g. one-shot checks). */
export function connect(target: RedisTarget, name: string, blocking = false, overrides: RedisOptions = {}): RedisClient {
  return new Redis({ ...redisOptions(target, name, blocking), ...overrides });
}

/** Where the target is, for people: no credentials. */
export function describeTarget(target: RedisTarget): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `${target.tls ? 'rediss' : 'redis'}://${host}:${target.port}/${target.db}`;
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
 * The CloudEvent source of a queue: `redis://host:port/db/key`. Never carries credentials, and
 * does not change with TLS (the source is part of each Job's identity).
 */
export function sourceUrl(target: RedisTarget, key: string): string {
  const host = target.host.includes(':') && !target.host.startsWith('[') ? `[${target.host}]` : target.host;
  return `redis://${host}:${target.port}/${target.db}/${encodePathSegment(key)}`;
}
