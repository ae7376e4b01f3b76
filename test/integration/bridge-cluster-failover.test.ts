/**
 * A Redis Cluster master failover while items flow: the master holding the queue's slot is killed
 * with SIGKILL, its replica takes over, and every item Redis acknowledged to the producer (and WAIT
 * confirmed on a replica) reaches the sink under one id, or sits in the dead-letter stream. The
 * same holds while the queue's slot is migrated to another master (ASK, then MOVED).
 */
import { Cluster } from 'ioredis';
import { BridgeProcess, RecordingSink, slowSink } from '../helpers/bridge.ts';
import { CLAIM_WAIT, expectNothingLost, failoverRun } from '../helpers/failover-run.ts';
import { startRedisCluster, type RedisClusterServers } from '../helpers/redis-cluster.ts';
import { uniquePrefix } from '../helpers/redis.ts';

describe('bridge on Redis Cluster: the queue\'s master killed, or its slot resharded, while items flow', function () {
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
        redisEnv: { REDIS_CLUSTER_NODES: c.seeds, ...CLAIM_WAIT },
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
      expectNothingLost(`cluster failover, ${mode}`, result);
    });
  }

  it("list mode, two bridges: the queue's slot resharded to another master while items flow (ASK, then MOVED)", async function () {
    const c = cluster!;
    const queue = `${uniquePrefix('reshard')}queue`;
    const result = await failoverRun({
      redisEnv: { REDIS_CLUSTER_NODES: c.seeds, ...CLAIM_WAIT },
      redis: redis!,
      masterPort: () => c.masterOf(queue),
      failover: async () => {
        const { from, to } = await c.moveSlotOf(queue);
        return { killed: from, promoted: to };
      },
      sink,
      queue,
      mode: 'list',
      replicas: 2,
      total: 1_500,
      killAfter: 400,
    });
    expectNothingLost('cluster reshard, list', result);
  });
});
