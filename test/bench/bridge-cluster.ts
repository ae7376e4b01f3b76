/**
 * Bridge throughput on a three-master Redis Cluster with three queues (one per master, one bridge
 * each) against one queue on a single server (one bridge), in one run; a single server with three
 * queues and three bridges sits beside them, to separate what the cluster adds from what more
 * bridges add. Items are pushed once every bridge listens; the time runs from the first push to
 * the sink's last 2xx. The sink answers 202 at once, so the figure is the bridge and Redis alone.
 *
 * `npm run bench -- bridge-cluster` (opt-in: `npm run bench` alone leaves it out), or
 * `node test/bench/bridge-cluster.ts`; ITEMS=15000 by default. Last stdout line: one JSON object.
 */
import { Cluster, Redis } from 'ioredis';
import { BridgeProcess, RecordingSink, now } from '../helpers/bridge.ts';
import { startRedisCluster } from '../helpers/redis-cluster.ts';
import { startRedis, uniquePrefix } from '../helpers/redis.ts';
import { printResult, printTable, type Row } from './report.ts';

const ITEMS = Number(process.env['ITEMS'] ?? 15_000);

interface Round {
  setup: string;
  queues: number;
  itemsPerSecond: number;
  seconds: number;
}

async function round(setup: string, redisEnv: Record<string, string>, producer: Redis | Cluster, queues: string[]): Promise<Round> {
  const sink = await new RecordingSink().start();
  const bridges = queues.map((queue, i) => new BridgeProcess({ ...redisEnv, K_SINK: sink.url, QUEUE_KEY: queue, CONSUMER: `bench-${i}`, CONCURRENCY: '16', LOG_LEVEL: 'info' }));
  try {
    await Promise.all(bridges.map((b) => b.port()));
    const perQueue = Math.ceil(ITEMS / queues.length);
    const total = perQueue * queues.length;
    // Counted as they arrive: rescanning the sink's whole record per delivery would be the bottleneck.
    const seen = new Set<string>();
    let last = 0;
    let delivered: () => void = () => undefined;
    const allDelivered = new Promise<void>((resolve) => (delivered = resolve));
    sink.respond = (_req, body) => {
      seen.add(body.toString('latin1'));
      last = now();
      if (seen.size >= total) delivered();
      return 202;
    };
    const started = now();
    await Promise.all(
      queues.map(async (queue, q) => {
        for (let i = 0; i < perQueue; i += 500) {
          const batch = Array.from({ length: Math.min(500, perQueue - i) }, (_, j) => `q${q}-item-${i + j}`);
          await producer.lpush(queue, ...batch);
        }
      }),
    );
    await allDelivered;
    const seconds = (last - started) / 1000;
    return { setup, queues: queues.length, itemsPerSecond: Math.round(total / seconds), seconds: Math.round(seconds * 100) / 100 };
  } finally {
    for (const b of bridges) await b.terminate();
    await sink.stop();
  }
}

export async function main(): Promise<void> {
  const single = await startRedis();
  const cluster = await startRedisCluster();
  const redis = new Redis(single.url);
  const clusterClient = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
  try {
    // Three queues whose slots sit on three different masters.
    const clusterQueues: string[] = [];
    const masters = new Set<number>();
    for (let i = 0; clusterQueues.length < 3 && i < 1000; i++) {
      const queue = `{bench-${i}}:${uniquePrefix('q')}queue`;
      const master = await cluster.masterOf(queue);
      if (!masters.has(master)) {
        masters.add(master);
        clusterQueues.push(queue);
      }
    }
    const rounds = [
      await round('single server, 1 queue, 1 bridge', { REDIS_URL: single.url }, redis, [`${uniquePrefix('bench')}queue`]),
      await round('single server, 3 queues, 3 bridges', { REDIS_URL: single.url }, redis, [1, 2, 3].map((i) => `${uniquePrefix(`bench${i}`)}queue`)),
      await round('cluster (3 masters), 3 queues, 3 bridges', { REDIS_CLUSTER_NODES: cluster.seeds }, clusterClient, clusterQueues),
    ];
    printTable(`bridge throughput, ${ITEMS} items, sink answers 202 at once`, rounds.map((r) => ({ ...r }) as Row));
    const [one, three, clustered] = rounds as [Round, Round, Round];
    printResult('bridge-cluster', Math.round((clustered.itemsPerSecond / one.itemsPerSecond) * 100) / 100, {
      items: ITEMS,
      singleOneQueuePerSecond: one.itemsPerSecond,
      singleThreeQueuesPerSecond: three.itemsPerSecond,
      clusterThreeQueuesPerSecond: clustered.itemsPerSecond,
      clusterVsSingleThreeQueues: Math.round((clustered.itemsPerSecond / three.itemsPerSecond) * 100) / 100,
    });
  } finally {
    redis.disconnect();
    clusterClient.disconnect();
    await cluster.stop();
    await single.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
  process.exit(0);
}
