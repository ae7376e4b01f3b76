/**
 * Crash at every step: the bridge runs as a child process and is killed with SIGKILL at random
 * points while 2,000 items flow to a sink that records ids; it is restarted each time, sometimes
 * under the same consumer name (a container restart), sometimes under a new one (a replaced pod).
 * Every item must reach the sink, no item may carry two different ids, and Redis must end empty.
 * The body is test/helpers/crash-run.ts, shared with the Redis Cluster variant.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { BridgeProcess, RecordingSink } from '../helpers/bridge.ts';
import { crashRun, slowSink, type CrashResult } from '../helpers/crash-run.ts';
import { startRedis, uniquePrefix, type RedisServer } from '../helpers/redis.ts';

describe('bridge crash at every step: kill -9 while 2,000 items flow', function () {
  this.timeout(180_000);
  let server: RedisServer;
  let redis: Redis;
  let sink: RecordingSink;

  before(async function () {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  after(async function () {
    redis.disconnect();
    await server.stop();
  });
  beforeEach(async function () {
    // A sink with a little latency, so there are always sends in flight to be cut off.
    sink = slowSink(await new RecordingSink().start());
  });
  afterEach(async function () {
    await BridgeProcess.killAll();
    await sink.stop();
  });

  async function run(mode: 'list' | 'stream', replicas: number): Promise<CrashResult> {
    const queue = `${uniquePrefix('crash')}queue`;
    const source = `redis://127.0.0.1:${server.port}/0/${queue}`;
    const result = await crashRun({ redisEnv: { REDIS_URL: server.url }, redis, sink, queue, mode, replicas, source });
    process.stderr.write(`      ${mode}, ${replicas} replica(s): ${JSON.stringify(result)}\n`);
    return result;
  }

  it('list mode, one replica: every item delivered, one id each, Redis empty', async function () {
    const { kills } = await run('list', 1);
    expect(kills).to.be.at.least(3);
  });

  it('list mode, two replicas killed independently: each item delivered with one id between them', async function () {
    const { kills } = await run('list', 2);
    expect(kills).to.be.at.least(6);
  });

  it('stream mode, one replica: every entry delivered under its entry id, stream and pending list empty', async function () {
    const { kills } = await run('stream', 1);
    expect(kills).to.be.at.least(3);
  });

  it('stream mode, two replicas killed independently', async function () {
    const { kills } = await run('stream', 2);
    expect(kills).to.be.at.least(6);
  });
});
