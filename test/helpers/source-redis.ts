/**
 * Mocha hooks for tests of the queue sources (list and stream mode) against a private
 * redis-server: the server and a plain client for the suite, a key family of each test's own, and
 * connections made the way the bridge makes them, closed after the test that opened them.
 */
import type { Redis } from 'ioredis';
import { queueKeys, type QueueKeys } from '../../function/queue/keys.ts';
import { connect, type RedisClient } from '../../function/queue/connection.ts';
import { uniquePrefix, usePrivateRedis, type RedisServer } from './redis.ts';

export interface SourceRedis {
  server: RedisServer;
  /** A plain client on `server`, to build and inspect states. */
  redis: Redis;
  /** The key family of this test's queue. */
  keys: QueueKeys;
  /** A bridge connection (`blocking` for BLMOVE and XREADGROUP) to `port`, by default the server's. */
  connect(name: string, blocking?: boolean, port?: number): RedisClient;
}

/** `name` prefixes the queues. Read the fields inside tests. */
export function useSourceRedis(name: string): SourceRedis {
  const r = usePrivateRedis();
  const clients: RedisClient[] = [];
  const ctx = {
    connect(clientName: string, blocking = false, port = ctx.server.port) {
      const client = connect({ kind: 'standalone', host: '127.0.0.1', port, db: 0, tls: false }, clientName, blocking);
      clients.push(client);
      return client;
    },
  } as SourceRedis;
  beforeEach(function () {
    Object.assign(ctx, { server: r.server, redis: r.redis, keys: queueKeys(`${uniquePrefix(name)}queue`) });
  });
  afterEach(function () {
    for (const c of clients.splice(0)) c.disconnect();
  });
  return ctx;
}
