/**
 * The bridge on a Sentinel-managed master (one master, one replica, three sentinels): the master is
 * killed with SIGKILL while items flow, the sentinels promote the replica, the bridges follow it,
 * and every item Redis acknowledged to the producer (and WAIT confirmed on the replica) reaches the
 * sink under one id, or sits in the dead-letter stream.
 */
import { expect } from 'chai';
import { sourceUrl } from '../../function/kube/event-source.ts';
import { loadRedisSettings } from '../../function/config/redis.ts';
import { checkRedis } from '../../function/doctor/redis-check.ts';
import { useSink } from '../helpers/bridge-suite.ts';
import { expectFailoverLosesNothing } from '../helpers/failover-run.ts';
import { startSentinelDeployment, useDeployment } from '../helpers/redis-deployment.ts';
import { SENTINEL_MASTER } from '../helpers/redis-sentinel.ts';

describe('bridge on Redis Sentinel: kill -9 the master while items flow', function () {
  this.timeout(180_000);
  const s = useSink({ slow: true });
  const d = useDeployment(() => startSentinelDeployment(), { each: true });

  it("the doctor's Redis check and the event source go through the sentinels' master name", async function () {
    const env = { REDIS_SENTINELS: d.redis.sentinel.sentinels, REDIS_SENTINEL_MASTER: SENTINEL_MASTER, QUEUE_KEY: 'jobs' };
    const result = await checkRedis(env);
    expect(result.status, result.detail).to.equal('ok');
    expect(result.detail).to.match(/^redis master "job-robot" \(db 0\) via sentinels .* answers PING; jobs holds 0 items$/);
    expect(sourceUrl(loadRedisSettings(env).redis, 'jobs')).to.equal('redis+sentinel://job-robot/0/jobs');
  });

  for (const mode of ['list', 'stream'] as const) {
    it(`${mode} mode, two bridges: no acknowledged, replicated item lost or given two ids`, async function () {
      await expectFailoverLosesNothing(`sentinel failover, ${mode}`, d.redis, s.sink, { mode });
    });
  }
});
