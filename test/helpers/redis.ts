/** A private redis-server for a test run (or the one named by REDIS_URL), and unique key prefixes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../cluster/ports.ts';

export interface RedisServer {
  url: string;
  port: number;
  /** Kills the server if this helper started it; a REDIS_URL server is left alone. */
  stop(): Promise<void>;
  /** Kills the server with SIGKILL (fault tests); only for servers this helper started. */
  child?: ChildProcess;
}

function ping(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host }, () => sock.write('PING\r\n'));
    sock.setTimeout(1000, () => sock.destroy());
    sock.on('data', (d) => {
      sock.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    sock.on('error', () => resolve(false));
    sock.on('close', () => resolve(false));
  });
}

/** Starts `redis-server` on a free port with persistence off. Extra args are appended. */
export async function startRedis(extraArgs: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = err));
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (spawnError) {
      throw new Error(`cannot start redis-server (${spawnError.message}); install it (apt-get install redis-server) or set REDIS_URL`);
    }
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 10 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    child,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** REDIS_URL when set, else a private server. */
export async function testRedis(): Promise<RedisServer> {
  const url = process.env['REDIS_URL'];
  if (url) return { url, port: Number(new URL(url).port || 6379), stop: async () => undefined };
  return startRedis();
}

/** A key prefix no other test shares, ending in ':'. */
export function uniquePrefix(name = 'test'): string {
  return `jr-${name}-${randomBytes(4).toString('hex')}:`;
}

/**
 * Mocha hooks giving the enclosing suite a private redis-server and a plain client to inspect it;
 * read `.server` and `.redis` inside tests.
 */
export function usePrivateRedis(): { server: RedisServer; redis: Redis } {
  const ctx = {} as { server: RedisServer; redis: Redis };
  before(async function () {
    ctx.server = await startRedis();
    ctx.redis = new Redis(ctx.server.url);
  });
  after(async function () {
    ctx.redis?.disconnect();
    await ctx.server?.stop();
  });
  return ctx;
}

/** Mocha hook: a queue key no other test shares, new before each test; read `.queue` inside tests. */
export function useQueueName(name: string): { queue: string } {
  const ctx = { queue: '' };
  beforeEach(function () {
    ctx.queue = `${uniquePrefix(name)}queue`;
  });
  return ctx;
}
