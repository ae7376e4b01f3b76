/**
 * SIGTERM and Redis outages: the bridge stops claiming, finishes or hands back what it holds, and
 * exits; a lost Redis connection pauses it (readiness false) instead of crashing it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { queueKeys } from '../../function/queue/keys.ts';
import { freePort } from '../cluster/ports.ts';
import { BridgeProcess, RecordingSink, allKeys, waitUntil } from '../helpers/bridge.ts';
import { useBridgeSuite, useSink } from '../helpers/bridge-suite.ts';
import { uniquePrefix } from '../helpers/redis.ts';

/** A sink that holds every request until released. */
function holdingSink(sink: RecordingSink): { arrived: () => number; release: () => void } {
  let arrived = 0;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  sink.respond = async () => {
    arrived += 1;
    await gate;
    return 202;
  };
  return { arrived: () => arrived, release: () => release() };
}

describe('bridge shutdown: SIGTERM hand-back (child process, real Redis)', function () {
  this.timeout(60_000);
  const t = useBridgeSuite('shutdown');

  const env = (over: Record<string, string> = {}) => ({
    REDIS_URL: t.server.url,
    K_SINK: t.sink.url,
    QUEUE_KEY: t.queue,
    CONCURRENCY: '4',
    LEASE_MS: '60000', // long: hand-back must not depend on lease expiry
    BACKOFF_MIN_MS: '10',
    BACKOFF_MAX_MS: '100',
    ...over,
  });

  /** Ten items queued, and a bridge with `over` holding four of them in sends the sink has not answered. */
  async function fourSendsHeld(tag: string, over: Record<string, string>) {
    const hold = holdingSink(t.sink);
    await t.redis.lpush(t.queue, ...Array.from({ length: 10 }, (_, i) => `${tag}-${i}`));
    const bridge = new BridgeProcess(env(over));
    await waitUntil(() => hold.arrived() === 4, 10_000, 'four sends in flight');
    return { hold, bridge };
  }

  it('SIGTERM with sends stuck past the grace period: exits 0, and the next replica redelivers them at once under the same ids', async function () {
    const { hold, bridge: first } = await fourSendsHeld('held', { CONSUMER: 'first', SHUTDOWN_GRACE_MS: '300' });
    const t0 = Date.now();
    const exit = await first.terminate();
    expect(exit).to.deep.equal({ code: 0, signal: null });
    expect(Date.now() - t0).to.be.lessThan(5_000);
    const keys = queueKeys(t.queue);
    expect(await t.redis.hlen(keys.items)).to.equal(4); // still claimed, under their ids
    expect(await t.redis.llen(t.queue)).to.equal(6); // the rest never claimed
    expect(await t.redis.zscore(keys.consumers, 'first')).to.equal('0'); // lease handed back
    const firstIds = new Set(await t.redis.hkeys(keys.items));

    t.sink.respond = () => 202;
    const second = new BridgeProcess(env({ CONSUMER: 'second' }));
    await t.sink.waitFor(() => t.sink.acceptedBodies().size === 10, 15_000, 'all ten items via the second replica');
    const redelivered = t.sink.accepted().filter((d) => firstIds.has(d.id));
    expect(redelivered.map((d) => d.body.toString()).sort()).to.deep.equal(['held-0', 'held-1', 'held-2', 'held-3']);
    hold.release();
    await second.terminate();
    expect((await allKeys(t.redis)).filter((k) => k.includes(t.queue))).to.deep.equal([]);
  });

  it('SIGTERM while sends finish within the grace period: they are acknowledged, nothing else is claimed, Redis is left clean', async function () {
    const { hold, bridge } = await fourSendsHeld('finish', { CONSUMER: 'finisher', SHUTDOWN_GRACE_MS: '10000' });
    const exiting = bridge.terminate();
    await waitUntil(() => bridge.logged('shutting down: finishing in-flight requests').length === 1, 5_000, 'the shutdown to begin');
    hold.release();
    expect(await exiting).to.deep.equal({ code: 0, signal: null });
    expect(t.sink.accepted()).to.have.length(4);
    expect(await t.redis.llen(t.queue)).to.equal(6);
    // Only the untouched queue remains: no claims, no processing list, no lease entry.
    expect((await allKeys(t.redis)).filter((k) => k.includes(t.queue))).to.deep.equal([t.queue]);
  });

  it('SIGTERM while an item waits out a long backoff: exits at once and hands it back with its attempts', async function () {
    t.sink.respond = () => 500;
    await t.redis.lpush(t.queue, 'failing');
    const bridge = new BridgeProcess(env({ CONSUMER: 'waiter', BACKOFF_MIN_MS: '60000', BACKOFF_MAX_MS: '60000', SHUTDOWN_GRACE_MS: '20000' }));
    await t.sink.waitFor(() => t.sink.deliveries.length === 1, 10_000, 'the first failed attempt');
    const keys = queueKeys(t.queue);
    await waitUntil(async () => (await t.redis.hlen(keys.attempts)) === 1, 5_000, 'the attempt to be recorded');
    const t0 = Date.now();
    expect(await bridge.terminate()).to.deep.equal({ code: 0, signal: null });
    expect(Date.now() - t0).to.be.lessThan(5_000);
    const [id] = await t.redis.hkeys(keys.items);
    expect(await t.redis.hget(keys.attempts, id!)).to.equal('1');
    expect(await t.redis.zscore(keys.consumers, 'waiter')).to.equal('0');
  });

  it('stream mode SIGTERM hand-back: the next replica takes the pending entries over at once under their entry ids', async function () {
    const hold = holdingSink(t.sink);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await t.redis.xadd(t.queue, '*', 'data', `s-${i}`))!);
    const first = new BridgeProcess(env({ MODE: 'stream', CONSUMER: 'first', SHUTDOWN_GRACE_MS: '300' }));
    await waitUntil(() => hold.arrived() === 4, 10_000, 'four sends in flight');
    expect((await first.terminate()).code).to.equal(0);
    t.sink.respond = () => 202;
    const second = new BridgeProcess(env({ MODE: 'stream', CONSUMER: 'second' }));
    await t.sink.waitFor(() => t.sink.acceptedBodies().size === 6, 15_000, 'all six entries');
    expect(new Set(t.sink.accepted().map((d) => d.id))).to.deep.equal(new Set(ids));
    hold.release();
    await second.terminate();
    expect(await t.redis.xlen(t.queue)).to.equal(0);
  });
});

describe('bridge and a Redis outage: paused, not crashed (child process, real Redis)', function () {
  this.timeout(60_000);
  let dir: string;
  let port: number;
  let redisChild: ChildProcess | undefined;
  const s = useSink();

  /** A redis-server on a fixed port and directory with fsync'd AOF, so a kill -9 and restart keeps data. */
  async function startPersistentRedis(): Promise<void> {
    redisChild = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
    const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
    probe.on('error', () => undefined); // refused until the server is up
    await probe.connect().catch(() => undefined);
    await probe.ping();
    probe.disconnect();
  }

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'job-robot-bridge-outage-'));
    port = await freePort();
    await startPersistentRedis();
  });
  after(async function () {
    redisChild?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('Redis killed and restarted: readiness goes false then true, the process never restarts, items pushed before and after are delivered', async function () {
    const url = `redis://127.0.0.1:${port}`;
    const queue = `${uniquePrefix('outage')}queue`;
    const bridge = new BridgeProcess({ REDIS_URL: url, K_SINK: s.sink.url, QUEUE_KEY: queue, CONSUMER: 'outage', BACKOFF_MIN_MS: '10', BACKOFF_MAX_MS: '100' });
    await waitUntil(async () => (await bridge.get('/health/readiness')).status === 200, 10_000, 'readiness');
    const redis = new Redis({ port, maxRetriesPerRequest: null, retryStrategy: () => 50 });
    redis.on('error', () => undefined); // expected while the server is down
    await redis.lpush(queue, ...Array.from({ length: 50 }, (_, i) => `before-${i}`));
    await s.sink.waitFor(() => s.sink.acceptedBodies().size === 50, 10_000, 'items before the outage');

    const exited = new Promise<void>((resolve) => redisChild!.once('exit', () => resolve()));
    redisChild!.kill('SIGKILL');
    await exited;
    await waitUntil(async () => (await bridge.get('/health/readiness')).status === 503, 10_000, 'readiness to fail');
    expect((await bridge.get('/health/liveness')).status).to.equal(200);
    expect((await bridge.get('/metrics')).status).to.equal(200); // a scrape does not hang on Redis

    await startPersistentRedis();
    await waitUntil(async () => (await bridge.get('/health/readiness')).status === 200, 20_000, 'readiness after Redis came back');
    await redis.lpush(queue, ...Array.from({ length: 50 }, (_, i) => `after-${i}`));
    await s.sink.waitFor(() => s.sink.acceptedBodies().size === 100, 20_000, 'items after the outage');
    expect(bridge.alive).to.equal(true);
    expect((await bridge.terminate()).code).to.equal(0);
    expect((await allKeys(redis)).filter((k) => k.includes(queue))).to.deep.equal([]);
    redis.disconnect();
  });
});
