/**
 * A socket that emits a second 'error' (a refused TLS certificate, then the server's alert) must not
 * crash a job-robot process: ioredis listens for the first error only, and an 'error' with no
 * listener throws. Real redis-server; the errors are emitted on the client's real socket.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { connect, type RedisClient } from '../../function/queue/connection.ts';
import { testRedis, type RedisServer } from '../helpers/redis.ts';
import { eventually } from '../helpers/kube.ts';

/** Emits two errors on the client's current socket; returns what the second emit threw, if anything. */
function twoSocketErrors(client: Redis): unknown {
  const stream = client.stream;
  stream.emit('error', new Error('first socket error'));
  try {
    stream.emit('error', new Error('second socket error'));
    return undefined;
  } catch (err) {
    return err;
  } finally {
    stream.destroy();
  }
}

describe('queue connection: a second socket error cannot crash the process', function () {
  let server: RedisServer;
  const clients: RedisClient[] = [];
  before(async function () {
    server = await testRedis();
  });
  after(async function () {
    for (const c of clients) c.disconnect();
    await server?.stop();
  });

  it('without the guard, ioredis leaves the second error unhandled (why the guard exists)', async function () {
    const bare = new Redis(server.url, { retryStrategy: () => null });
    clients.push(bare);
    bare.on('error', () => undefined);
    await bare.ping();
    expect(String(twoSocketErrors(bare))).to.match(/second socket error/);
  });

  it('a client from connect() reports the first error, drops the second, and reconnects', async function () {
    const port = new URL(server.url).port;
    const client = connect({ kind: 'standalone', host: '127.0.0.1', port: Number(port || 6379), db: 0, tls: false }, 'job-robot-test');
    clients.push(client);
    const seen: string[] = [];
    client.on('error', (err: Error) => seen.push(err.message));
    expect(await client.ping()).to.equal('PONG');
    expect(twoSocketErrors(client as Redis)).to.equal(undefined);
    expect(seen).to.deep.equal(['first socket error']);
    await eventually(async () => client.status === 'ready', 10_000, 'the client to reconnect');
    expect(await client.ping()).to.equal('PONG');
  });
});
