/**
 * A Redis Cluster master failover while items flow: the master holding the queue's slot is killed
 * with SIGKILL, its replica takes over, and every item Redis acknowledged to the producer (and WAIT
 * confirmed on a replica) reaches the sink under one id, or sits in the dead-letter stream.
 */
import { expect } from 'chai';
import { Cluster } from 'ioredis';
import { BridgeProcess, RecordingSink } from '../helpers/bridge.ts';
import { slowSink } from '../helpers/crash-run.ts';
import { failoverRun } from '../helpers/failover-run.ts';
import { startRedisCluster, type RedisClusterServers } from '../helpers/redis-cluster.ts';
import { uniquePrefix } from '../helpers/redis.ts';

describe('bridge on Redis Cluster: kill -9 the queue\'s master while items flow', function () {
  this.timeout(180_000);
  let cluster: RedisClusterServers | undefined;
  let redis: Cluster | undefined;
  let sink: RecordingSink;

  beforeEach(async function () {
    // A fresh cluster each time: the failover leaves one master without a replica.
    cluster = await startRedisCluster();
    redis = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), { retryDelayOnFailover: 300, maxRedirections: 200 });
    redis.on('error', () => undefined); // it follows the failover on its own
    sink = slowSink(await new RecordingSink().start());
  });
  afterEach(async function () {
    await BridgeProcess.killAll();
    await sink.stop();
    redis?.disconnect();
    await cluster?.stop();
  });

  for (const mode of ['list', 'stream'] as const) {
    it(`${mode} mode, two bridges: no acknowledged, replicated item lost or given two ids`, async function () {
      const c = cluster!;
      const queue = `${uniquePrefix(`failover-${mode}`)}queue`;
      const result = await failoverRun({
        redisEnv: { REDIS_CLUSTER_NODES: c.seeds },
        redis: redis!,
        masterPort: () => c.masterOf(queue),
        failover: () => c.killMasterOf(queue),
        sink,
        queue,
        mode,
        replicas: 2,
        total: 1_500,
        killAfter: 400,
      });
      process.stderr.write(`      cluster failover, ${mode}: ${JSON.stringify(result)}\n`);
      expect(result.promoted).to.not.equal(result.killed);
      expect(result.lost, 'acknowledged items lost').to.equal(0);
      expect(result.duplicated, 'items delivered under two ids').to.equal(0);
    });
  }
});
