/**
 * A Redis Cluster master failover while items flow: the master holding the queue's slot is killed
 * with SIGKILL, its replica takes over, and every item Redis acknowledged to the producer (and WAIT
 * confirmed on a replica) reaches the sink under one id, or sits in the dead-letter stream. The
 * same holds while the queue's slot is migrated to another master (ASK, then MOVED).
 */
import { useSink } from '../helpers/bridge-suite.ts';
import { expectFailoverLosesNothing } from '../helpers/failover-run.ts';
import { startClusterDeployment, useDeployment } from '../helpers/redis-deployment.ts';

describe('bridge on Redis Cluster: the queue\'s master killed, or its slot resharded, while items flow', function () {
  this.timeout(180_000);
  const s = useSink({ slow: true });
  // A fresh cluster each time: the failover leaves one master without a replica.
  const d = useDeployment(() => startClusterDeployment(), { each: true });

  for (const mode of ['list', 'stream'] as const) {
    it(`${mode} mode, two bridges: no acknowledged, replicated item lost or given two ids`, async function () {
      await expectFailoverLosesNothing(`cluster failover, ${mode}`, d.redis, s.sink, { mode });
    });
  }

  it("list mode, two bridges: the queue's slot resharded to another master while items flow (ASK, then MOVED)", async function () {
    const reshard = async (queue: string) => {
      const { from, to } = await d.redis.cluster.moveSlotOf(queue);
      return { killed: from, promoted: to };
    };
    await expectFailoverLosesNothing('cluster reshard, list', d.redis, s.sink, { mode: 'list', failover: reshard });
  });
});
