/**
 * Mocha hooks for suites that run the bridge as a child process (helpers/bridge.ts): a recording
 * sink for each test, with every bridge process killed after it; and, for suites on one private
 * redis-server, that server, a client and a queue key of each test's own.
 */
import type { Redis } from 'ioredis';
import { BridgeProcess, RecordingSink, slowSink } from './bridge.ts';
import { useQueueName, usePrivateRedis, type RedisServer } from './redis.ts';

export interface SinkOptions {
  /** Listen before each test (the default); false leaves `sink.start()` to the test. */
  listen?: boolean;
  /** Answer after 0-3 ms, so there are always sends in flight to be cut off. */
  slow?: boolean;
}

/**
 * A new recording sink before each test, and after each test every bridge process killed, then the
 * sink stopped. Read `.sink` inside tests.
 */
export function useSink(o: SinkOptions = {}): { sink: RecordingSink } {
  const ctx = {} as { sink: RecordingSink };
  beforeEach(async function () {
    ctx.sink = o.slow ? slowSink(new RecordingSink()) : new RecordingSink();
    if (o.listen !== false) await ctx.sink.start();
  });
  afterEach(async function () {
    await BridgeProcess.killAll();
    await ctx.sink?.stop();
  });
  return ctx;
}

export interface BridgeSuite {
  server: RedisServer;
  /** A plain client on `server`. */
  redis: Redis;
  sink: RecordingSink;
  /** A queue key of this test's own, prefixed with the suite's name. */
  queue: string;
}

/** A private redis-server for the suite, and a sink and a queue key for each test. */
export function useBridgeSuite(name: string, sink: SinkOptions = {}): BridgeSuite {
  const ctx = {} as BridgeSuite;
  const r = usePrivateRedis();
  const s = useSink(sink);
  const q = useQueueName(name);
  beforeEach(function () {
    Object.assign(ctx, { server: r.server, redis: r.redis, sink: s.sink, queue: q.queue });
  });
  return ctx;
}
