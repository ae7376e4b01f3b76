/**
 * `npm run bench -- bridge`: items per second from Redis to a no-op HTTP sink through the bridge,
 * against a bare HTTP client posting the same number of CloudEvents to the same sink at the same
 * concurrency, in one run; and push-to-delivery latency.
 *
 * - Redis: a private redis-server. Sink: a no-op HTTP server in this process (reads each body,
 *   answers 202, counts arrivals).
 * - bridge: `job-robot bridge` as a child process (list mode, CONCURRENCY in flight), idle and
 *   blocked in BLMOVE when a round starts; the round pushes N items (LPUSH, 1,000 per command) and
 *   ends when the sink has seen all N. Every item is claimed, stamped, sent and acknowledged.
 * - bare: test/bench/bridge-client.ts as a child process: N ready-made CloudEvents posted with the
 *   same keep-alive pooling and CONCURRENCY in flight; the round ends when the sink has seen all N.
 * - Each round runs both paths back to back (alternating which goes first) after a warm-up of
 *   each. The headline ratio is the median over rounds of (bare ms / bridge ms): the two paths of
 *   a round saw about the same background load, and the median ignores a round another process
 *   disturbed. The ratio of median rates and of best rounds are reported beside it, and so is the
 *   CPU time per item of each path (the bridge's includes redis-server's; both include the sink's).
 * - Latency: items pushed one at a time at a steady rate well below capacity, each carrying its push
 *   time; the sink records arrival minus push (same clock: performance.timeOrigin + now()).
 *
 * Env: BENCH_BRIDGE_ITEMS (10000), BENCH_BRIDGE_CONCURRENCY (16), BENCH_BRIDGE_ROUNDS (7),
 * BENCH_BRIDGE_LATENCY_ITEMS (2000), BENCH_BRIDGE_LATENCY_RATE (500 per second).
 * Everything shares this machine's cores, so the figures move with its load.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { BridgeProcess, now, waitUntil } from '../helpers/bridge.ts';
import { startRedis } from '../helpers/redis.ts';
import { percentile, printResult, printTable, type Row } from './report.ts';

const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
};

const ITEMS = num('BENCH_BRIDGE_ITEMS', 10_000);
const CONCURRENCY = num('BENCH_BRIDGE_CONCURRENCY', 16);
const ROUNDS = num('BENCH_BRIDGE_ROUNDS', 7);
const LATENCY_ITEMS = num('BENCH_BRIDGE_LATENCY_ITEMS', 2_000);
const LATENCY_RATE = num('BENCH_BRIDGE_LATENCY_RATE', 500);
const WARMUP = 2_000;
const QUEUE = 'job-robot:bench';

/** Counts arrivals; resolves `until(n)` when n have arrived; optionally records latencies. */
class NoopSink {
  count = 0;
  latencies: number[] = [];
  measureLatency = false;
  private waiter: { n: number; resolve: (at: number) => void } | undefined;
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const at = now();
        if (this.measureLatency) {
          const { t } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { t: number };
          this.latencies.push(at - t);
        }
        res.writeHead(202).end();
        this.count += 1;
        if (this.waiter && this.count >= this.waiter.n) {
          const w = this.waiter;
          this.waiter = undefined;
          w.resolve(at);
        }
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
  }

  /** Resets the count; the promise resolves with the arrival time of the n-th event. */
  expect(n: number): Promise<number> {
    this.count = 0;
    return new Promise((resolve) => (this.waiter = { n, resolve }));
  }

  stop(): Promise<void> {
    this.server?.closeAllConnections();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The bare client child: `go(n)` posts n events. */
class BareClient {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private pending: ((msg: { done: number; errors: number }) => void) | undefined;

  constructor(sink: string) {
    this.child = fork(join(import.meta.dirname, 'bridge-client.ts'), [], {
      env: { ...process.env, SINK: sink, CONCURRENCY: String(CONCURRENCY) },
      ...(process.env['BENCH_PROF'] ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_PROF']}`] } : {}),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve) => {
      this.child.on('message', (msg: { ready?: boolean; done?: number; errors?: number }) => {
        if (msg.ready) resolve();
        if (typeof msg.done === 'number') this.pending?.({ done: msg.done, errors: msg.errors ?? 0 });
      });
    });
  }

  async go(n: number): Promise<{ done: number; errors: number }> {
    await this.ready;
    return new Promise((resolve) => {
      this.pending = resolve;
      this.child.send({ go: n });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  stop(): void {
    this.child.send({ exit: true });
  }
}

/** CPU time (user + system) a process has used, in ms (Linux /proc; 0 elsewhere). */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

const ownCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function pushAll(redis: Redis, n: number): Promise<void> {
  const pipeline = redis.pipeline();
  for (let i = 0; i < n; i += 1_000) {
    const batch: string[] = [];
    for (let j = i; j < Math.min(n, i + 1_000); j++) batch.push(`{"i":${j},"t":${now()}}`);
    pipeline.lpush(QUEUE, ...batch);
  }
  await pipeline.exec();
}

interface Round {
  path: 'bridge' | 'bare';
  round: number;
  ms: number;
  /** CPU per item, µs: the path's own processes plus the sink. */
  cpuUs: number;
}

export async function main(): Promise<void> {
  const redisServer = await startRedis();
  const redis = new Redis(redisServer.url);
  const sink = new NoopSink();
  await sink.start();
  const sinkUrl = `http://127.0.0.1:${sink.port}/`;
  const bridge = new BridgeProcess({
    REDIS_URL: redisServer.url,
    K_SINK: sinkUrl,
    QUEUE_KEY: QUEUE,
    CONCURRENCY: String(CONCURRENCY),
    CONSUMER: 'bench',
    LOG_LEVEL: 'info',
    ...(process.env['BENCH_PROF'] ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env['BENCH_PROF']}` } : {}),
  });
  const bare = new BareClient(sinkUrl);
  const blocked = () => waitUntil(async () => String(await redis.call('CLIENT', 'LIST')).includes('cmd=blmove'), 10_000, 'the bridge to block in BLMOVE');

  const runBridge = async (n: number): Promise<{ ms: number; cpuUs: number }> => {
    await blocked();
    const arrived = sink.expect(n);
    const cpu0 = cpuMs(bridge.child.pid!) + cpuMs(redisServer.child!.pid!) + ownCpuMs();
    const t0 = now();
    await pushAll(redis, n);
    const ms = (await arrived) - t0;
    const cpu = cpuMs(bridge.child.pid!) + cpuMs(redisServer.child!.pid!) + ownCpuMs() - cpu0;
    return { ms, cpuUs: (cpu * 1000) / n };
  };
  const runBare = async (n: number): Promise<{ ms: number; cpuUs: number }> => {
    const arrived = sink.expect(n);
    const cpu0 = cpuMs(bare.pid) + ownCpuMs();
    const t0 = now();
    const { errors } = await bare.go(n);
    if (errors) throw new Error(`bare client: ${errors} requests failed`);
    const ms = (await arrived) - t0;
    const cpu = cpuMs(bare.pid) + ownCpuMs() - cpu0;
    return { ms, cpuUs: (cpu * 1000) / n };
  };

  try {
    await bridge.port();
    await runBridge(WARMUP);
    await runBare(WARMUP);

    const rounds: Round[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      const order: Round['path'][] = r % 2 ? ['bridge', 'bare'] : ['bare', 'bridge'];
      for (const path of order) {
        const { ms, cpuUs } = path === 'bridge' ? await runBridge(ITEMS) : await runBare(ITEMS);
        rounds.push({ path, round: r, ms, cpuUs });
      }
    }

    // Latency at a steady rate below capacity: one LPUSH per item.
    await blocked();
    sink.latencies = [];
    sink.measureLatency = true;
    const arrived = sink.expect(LATENCY_ITEMS);
    const interval = 1000 / LATENCY_RATE;
    const start = now();
    for (let i = 0; i < LATENCY_ITEMS; i++) {
      const due = start + i * interval;
      const wait = due - now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      await redis.lpush(QUEUE, `{"i":${i},"t":${now()}}`);
    }
    await arrived;
    sink.measureLatency = false;
    const p50 = percentile(sink.latencies, 50);
    const p99 = percentile(sink.latencies, 99);
    const max = Math.max(...sink.latencies);

    const median = (path: Round['path'], of: (x: Round) => number) => percentile(rounds.filter((x) => x.path === path).map(of), 50);
    const bridgeRate = ITEMS / (median('bridge', (x) => x.ms) / 1000);
    const bareRate = ITEMS / (median('bare', (x) => x.ms) / 1000);
    const perRound = Array.from({ length: ROUNDS }, (_, i) => {
      const of = (path: Round['path']) => rounds.find((x) => x.round === i + 1 && x.path === path)!.ms;
      return of('bare') / of('bridge');
    });
    const best = (path: Round['path']) => Math.min(...rounds.filter((x) => x.path === path).map((x) => x.ms));
    const bestBridgeRate = ITEMS / (best('bridge') / 1000);
    const bestBareRate = ITEMS / (best('bare') / 1000);
    const ratio = percentile(perRound, 50);
    const bridgeCpu = median('bridge', (x) => x.cpuUs);
    const bareCpu = median('bare', (x) => x.cpuUs);

    const rows: Row[] = rounds.map((x) => ({
      round: x.round,
      path: x.path,
      items: ITEMS,
      concurrency: CONCURRENCY,
      ms: x.ms,
      'items/s': ITEMS / (x.ms / 1000),
      'cpu µs/item': x.cpuUs,
      'round ratio': x.path === 'bridge' ? perRound[x.round - 1]! : '',
    }));
    printTable(`bridge throughput: Redis -> bridge -> no-op sink vs bare client -> no-op sink (${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(1)})`, rows);
    printTable('summary', [
      { path: 'bridge', 'best items/s': bestBridgeRate, 'median items/s': bridgeRate, 'median cpu µs/item': bridgeCpu },
      { path: 'bare', 'best items/s': bestBareRate, 'median items/s': bareRate, 'median cpu µs/item': bareCpu },
      { path: 'bridge / bare', 'best items/s': bestBridgeRate / bestBareRate, 'median items/s': bridgeRate / bareRate, 'median cpu µs/item': bareCpu / bridgeCpu },
      { path: 'median of round ratios (headline)', 'best items/s': '', 'median items/s': ratio, 'median cpu µs/item': '' },
    ]);
    printTable(`push-to-delivery latency (${LATENCY_ITEMS} items, one LPUSH each, ${LATENCY_RATE}/s)`, [{ p50_ms: p50, p99_ms: p99, max_ms: max }]);
    printResult('bridge', ratio, {
      bridge_items_per_s: bridgeRate,
      bare_items_per_s: bareRate,
      bridge_best_items_per_s: bestBridgeRate,
      bare_best_items_per_s: bestBareRate,
      ratio_of_medians: bridgeRate / bareRate,
      ratio_of_best: bestBridgeRate / bestBareRate,
      cpu_ratio: bareCpu / bridgeCpu,
      bridge_cpu_us_per_item: bridgeCpu,
      bare_cpu_us_per_item: bareCpu,
      latency_p50_ms: p50,
      latency_p99_ms: p99,
      latency_max_ms: max,
      items: ITEMS,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      cpus: cpus().length,
      load: loadavg()[0]!,
    });
  } finally {
    bare.stop();
    await bridge.terminate();
    await sink.stop();
    redis.disconnect();
    await redisServer.stop();
  }
}
