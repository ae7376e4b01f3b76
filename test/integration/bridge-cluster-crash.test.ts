/**
 * The crash-at-every-step test on a real Redis Cluster (three masters, three replicas): bridges
 * configured with REDIS_CLUSTER_NODES are killed with SIGKILL at random points while 2,000 items
 * flow. Every item reaches the sink with one id, and the queue's slot ends empty.
 */
import { expect } from 'chai';
import { Cluster } from 'ioredis';
import { sourceUrl } from '../../function/kube/event-source.ts';
import { checkRedis } from '../../function/doctor/redis-check.ts';
import { loadRedisSettings } from '../../function/config/redis.ts';
import { useSink } from '../helpers/bridge-suite.ts';
import { expectCrashRun } from '../helpers/crash-run.ts';
import { startRedisCluster, type RedisClusterServers } from '../helpers/redis-cluster.ts';
import { useQueueName } from '../helpers/redis.ts';

describe('bridge crash at every step on Redis Cluster (3 masters, 3 replicas)', function () {
  this.timeout(180_000);
  let cluster: RedisClusterServers;
  let redis: Cluster;
  const s = useSink({ slow: true });
  const q = useQueueName('cluster-crash');

  before(async function () {
    cluster = await startRedisCluster();
    redis = new Cluster(cluster.seeds.split(',').map((seed) => ({ host: '127.0.0.1', port: Number(seed.split(':')[1]) })));
  });
  after(async function () {
    redis?.disconnect();
    await cluster?.stop();
  });

  async function run(mode: 'list' | 'stream', replicas: number) {
    const { queue } = q;
    const settings = loadRedisSettings({ REDIS_CLUSTER_NODES: cluster.seeds, QUEUE_KEY: queue });
    return expectCrashRun(`cluster, ${mode}, ${replicas} replica(s), slot on :${await cluster.masterOf(queue)}`, {
      redisEnv: { REDIS_CLUSTER_NODES: cluster.seeds },
      redis,
      sink: s.sink,
      queue,
      mode,
      replicas,
      source: sourceUrl(settings.redis, queue),
    });
  }

  it("the doctor's Redis check reaches the cluster through its seeds", async function () {
    const result = await checkRedis({ REDIS_CLUSTER_NODES: cluster.seeds.split(',')[0]!, QUEUE_KEY: 'jobs' });
    expect(result.status, result.detail).to.equal('ok');
    expect(result.detail).to.match(/^redis cluster seeded by 127\.0\.0\.1:\d+ answers PING; jobs holds 0 items$/);
  });

  it('list mode, two replicas killed independently: each item delivered with one id, slot empty', () => run('list', 2));
  it('stream mode, two replicas killed independently: every entry under its entry id, stream and pending list empty', () => run('stream', 2));
});
