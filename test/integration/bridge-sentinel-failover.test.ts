/**
 * The bridge on a Sentinel-managed master (one master, one replica, three sentinels): the master is
 * killed with SIGKILL while items flow, the sentinels promote the replica, the bridges follow it,
 * and every item Redis acknowledged to the producer (and WAIT confirmed on the replica) reaches the
 * sink under one id, or sits in the dead-letter stream.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { sourceUrl } from '../../function/bridge/redis.ts';
import { loadRedisSettings } from '../../function/config/redis.ts';
import { checkRedis } from '../../function/doctor/redis-check.ts';
import { BridgeProcess, RecordingSink, slowSink } from '../helpers/bridge.ts';
import { CLAIM_WAIT, expectNothingLost, failoverRun } from '../helpers/failover-run.ts';
import { SENTINEL_MASTER, startRedisSentinel, type RedisSentinelServers } from '../helpers/redis-sentinel.ts';
import { uniquePrefix } from '../helpers/redis.ts';

describe('bridge on Redis Sentinel: kill -9 the master while items flow', function () {
  this.timeout(180_000);
  let servers: RedisSentinelServers | undefined;
  let redis: Redis | undefined;
  let sink: RecordingSink;

  beforeEach(async function () {
    servers = await startRedisSentinel();
    redis = new Redis({ sentinels: servers.sentinelPorts.map((port) => ({ host: '127.0.0.1', port })), name: SENTINEL_MASTER, maxRetriesPerRequest: null });
    redis.on('error', () => undefined); // it reconnects through the sentinels on its own
    sink = slowSink(await new RecordingSink().start());
  });
  afterEach(async function () {
    await BridgeProcess.killAll();
    await sink.stop();
    redis?.disconnect();
    await servers?.stop();
  });

  it("the doctor's Redis check and the event source go through the sentinels' master name", async function () {
    const env = { REDIS_SENTINELS: servers!.sentinels, REDIS_SENTINEL_MASTER: SENTINEL_MASTER, QUEUE_KEY: 'jobs' };
    const result = await checkRedis(env);
    expect(result.status, result.detail).to.equal('ok');
    expect(result.detail).to.match(/^redis master "job-robot" \(db 0\) via sentinels .* answers PING; jobs holds 0 items$/);
    expect(sourceUrl(loadRedisSettings(env).redis, 'jobs')).to.equal('redis+sentinel://job-robot/0/jobs');
  });

  for (const mode of ['list', 'stream'] as const) {
    it(`${mode} mode, two bridges: no acknowledged, replicated item lost or given two ids`, async function () {
      const s = servers!;
      const queue = `${uniquePrefix(`sentinel-${mode}`)}queue`;
      const result = await failoverRun({
        redisEnv: { REDIS_SENTINELS: s.sentinels, REDIS_SENTINEL_MASTER: SENTINEL_MASTER, ...CLAIM_WAIT },
        redis: redis!,
        masterPort: () => s.masterPort(),
        failover: () => s.killMaster(),
        sink,
        queue,
        mode,
        replicas: 2,
        total: 1_500,
        killAfter: 400,
      });
      expectNothingLost(`sentinel failover, ${mode}`, result);
    });
  }
});
