/**
 * Crash at every step: the bridge runs as a child process and is killed with SIGKILL at random
 * points while 2,000 items flow to a sink that records ids; it is restarted each time, sometimes
 * under the same consumer name (a container restart), sometimes under a new one (a replaced pod).
 * Every item must reach the sink, no item may carry two different ids, and Redis must end empty.
 * The body is test/helpers/crash-run.ts, shared with the Redis Cluster variant.
 */
import { useBridgeSuite } from '../helpers/bridge-suite.ts';
import { expectCrashRun } from '../helpers/crash-run.ts';

describe('bridge crash at every step: kill -9 while 2,000 items flow', function () {
  this.timeout(180_000);
  // A sink with a little latency, so there are always sends in flight to be cut off.
  const t = useBridgeSuite('crash', { slow: true });

  const run = (mode: 'list' | 'stream', replicas: number) =>
    expectCrashRun(`${mode}, ${replicas} replica(s)`, {
      redisEnv: { REDIS_URL: t.server.url },
      redis: t.redis,
      sink: t.sink,
      queue: t.queue,
      mode,
      replicas,
      source: `redis://127.0.0.1:${t.server.port}/0/${t.queue}`,
    });

  it('list mode, one replica: every item delivered, one id each, Redis empty', () => run('list', 1));
  it('list mode, two replicas killed independently: each item delivered with one id between them', () => run('list', 2));
  it('stream mode, one replica: every entry delivered under its entry id, stream and pending list empty', () => run('stream', 1));
  it('stream mode, two replicas killed independently', () => run('stream', 2));
});
