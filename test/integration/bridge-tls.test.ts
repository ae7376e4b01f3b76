/**
 * TLS on both sides, verified: an https sink trusted through K_CA_CERTS, and a TLS-only
 * redis-server trusted through REDIS_TLS_CA. Certificates come from a throwaway CA made with
 * openssl for this run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:https';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { freePort } from '../cluster/ports.ts';
import { BridgeProcess, RecordingSink, waitUntil } from '../helpers/bridge.ts';
import { makePki, type Pki } from '../helpers/pki.ts';
import { startRedis, uniquePrefix, type RedisServer } from '../helpers/redis.ts';

describe('bridge TLS: verified https sink and TLS Redis (child process)', function () {
  this.timeout(60_000);
  let pki: Pki;

  before(function () {
    pki = makePki('bridge-tls');
  });
  after(function () {
    pki.remove();
  });
  afterEach(async function () {
    await BridgeProcess.killAll();
  });

  describe('https sink', function () {
    let redis: RedisServer;
    let client: Redis;
    let server: Server;
    let port: number;
    const bodies: string[] = [];

    before(async function () {
      redis = await startRedis();
      client = new Redis(redis.url);
      server = createServer({ key: pki.key, cert: pki.cert }, (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          bodies.push(Buffer.concat(chunks).toString());
          res.writeHead(202).end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      const addr = server.address();
      port = typeof addr === 'object' && addr ? addr.port : 0;
    });
    after(async function () {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      client.disconnect();
      await redis.stop();
    });

    it('K_CA_CERTS makes a sink signed by a private CA trusted', async function () {
      const queue = `${uniquePrefix('tls')}queue`;
      const bridge = new BridgeProcess({ REDIS_URL: redis.url, K_SINK: `https://127.0.0.1:${port}/`, K_CA_CERTS: pki.ca, QUEUE_KEY: queue });
      await client.lpush(queue, 'over-tls');
      await waitUntil(() => bodies.includes('over-tls'), 15_000, 'the item over https');
      expect((await bridge.terminate()).code).to.equal(0);
    });

    it('without K_CA_CERTS the certificate is refused; items wait (not dead-lettered) and the reason names K_CA_CERTS', async function () {
      const queue = `${uniquePrefix('tls')}queue`;
      const bridge = new BridgeProcess({
        REDIS_URL: redis.url, K_SINK: `https://127.0.0.1:${port}/`, QUEUE_KEY: queue, MAX_ATTEMPTS: '1', BACKOFF_MIN_MS: '10', BACKOFF_MAX_MS: '50',
      });
      await client.lpush(queue, 'untrusted');
      await waitUntil(async () => (await bridge.metric('job_robot_bridge_retried_total', { reason: 'unreachable' })) >= 5, 15_000, 'refused TLS attempts');
      expect(bodies).to.not.include('untrusted');
      expect(await bridge.metric('job_robot_bridge_dead_lettered_total')).to.equal(0);
      const retry = bridge.logged('delivery failed; retrying with backoff')[0]!;
      expect(String(retry['reason'])).to.match(/certificate not trusted.*K_CA_CERTS/);
      expect((await bridge.terminate()).code).to.equal(0);
    });
  });

  describe('TLS-only Redis', function () {
    let redisChild: ChildProcess;
    let tlsPort: number;
    let sink: RecordingSink;

    before(async function () {
      tlsPort = await freePort();
      redisChild = spawn(
        'redis-server',
        ['--port', '0', '--tls-port', String(tlsPort), '--bind', '127.0.0.1', '--tls-cert-file', pki.files.cert, '--tls-key-file', pki.files.key, '--tls-ca-cert-file', pki.files.ca, '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no', '--dir', pki.dir],
        { stdio: 'ignore' },
      );
      const probe = new Redis({ port: tlsPort, host: '127.0.0.1', tls: { ca: pki.ca }, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
      probe.on('error', () => undefined);
      await probe.connect().catch(() => undefined);
      await probe.ping();
      probe.disconnect();
      sink = await new RecordingSink().start();
    });
    after(async function () {
      redisChild.kill('SIGKILL');
      await sink.stop();
    });

    it('rediss:// with REDIS_TLS_CA: connects, verifies, delivers; the event source has no scheme change', async function () {
      const queue = `${uniquePrefix('tls')}queue`;
      const bridge = new BridgeProcess({ REDIS_URL: `rediss://127.0.0.1:${tlsPort}/0`, REDIS_TLS_CA: pki.ca, K_SINK: sink.url, QUEUE_KEY: queue });
      const producer = new Redis({ port: tlsPort, host: '127.0.0.1', tls: { ca: pki.ca } });
      await producer.lpush(queue, 'via-tls-redis');
      await sink.waitFor(() => sink.acceptedBodies().has('via-tls-redis'), 15_000, 'the item from TLS Redis');
      expect(sink.accepted()[0]!.source).to.equal(`redis://127.0.0.1:${tlsPort}/0/${queue}`);
      producer.disconnect();
      expect((await bridge.terminate()).code).to.equal(0);
    });

    it('rediss:// without the CA: the server certificate is refused, readiness stays false, the bridge does not crash', async function () {
      const bridge = new BridgeProcess({ REDIS_URL: `rediss://127.0.0.1:${tlsPort}/0`, K_SINK: sink.url, QUEUE_KEY: `${uniquePrefix('tls')}queue` });
      await waitUntil(() => bridge.logged('redis connection failed; retrying with backoff').length > 0, 15_000, 'the refused TLS connection to be logged');
      const failure = bridge.logged('redis connection failed; retrying with backoff')[0]!;
      expect(String(failure['err'])).to.match(/certificate/i);
      expect(String(failure['hint'])).to.match(/not trusted: check REDIS_TLS_CA/);
      expect((await bridge.get('/health/readiness')).status).to.equal(503);
      expect(bridge.alive).to.equal(true);
      expect((await bridge.terminate()).code).to.equal(0);
    });
  });
});
