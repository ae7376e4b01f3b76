/**
 * `job-robot doctor`'s Redis check names the cause and the variable to fix when Redis refuses the
 * credentials, on a single server, a Redis Cluster and behind Sentinel, where ioredis itself only
 * reports a summary ("Failed to refresh slots cache.", "All sentinels are unreachable").
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { checkRedis } from '../../function/doctor/redis-check.ts';
import { startRedisCluster, type RedisClusterServers } from '../helpers/redis-cluster.ts';
import { SENTINEL_MASTER, startRedisSentinel, type RedisSentinelServers } from '../helpers/redis-sentinel.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const PASSWORD = 'doctor-right';
const SENTINEL_PASSWORD = 'doctor-sentinel-right';

describe('doctor: the Redis check names a refused password and the variable to fix', function () {
  this.timeout(90_000);

  describe('a single server', function () {
    let server: RedisServer;
    before(async function () {
      server = await startRedis();
      const admin = new Redis(server.url);
      await admin.config('SET', 'requirepass', PASSWORD);
      admin.disconnect();
    });
    after(async function () {
      await server?.stop();
    });

    it('a wrong REDIS_PASSWORD fails with WRONGPASS and names REDIS_PASSWORD; the right one passes', async function () {
      const wrong = await checkRedis({ REDIS_URL: server.url, REDIS_PASSWORD: 'nope' });
      expect(wrong.status).to.equal('fail');
      expect(wrong.detail).to.match(/WRONGPASS/);
      expect(wrong.fix).to.match(/REDIS_PASSWORD/);
      const right = await checkRedis({ REDIS_URL: server.url, REDIS_PASSWORD: PASSWORD });
      expect(right.status, right.detail).to.equal('ok');
    });
  });

  describe('Redis Cluster', function () {
    let cluster: RedisClusterServers;
    before(async function () {
      cluster = await startRedisCluster(1_000, { password: PASSWORD });
    });
    after(async function () {
      await cluster?.stop();
    });

    it('a wrong password behind the cluster summary is found and named', async function () {
      const wrong = await checkRedis({ REDIS_CLUSTER_NODES: cluster.seeds, REDIS_PASSWORD: 'nope' });
      expect(wrong.status).to.equal('fail');
      expect(wrong.detail).to.match(/WRONGPASS/);
      expect(wrong.fix).to.match(/REDIS_PASSWORD/);
      const right = await checkRedis({ REDIS_CLUSTER_NODES: cluster.seeds, REDIS_PASSWORD: PASSWORD });
      expect(right.status, right.detail).to.equal('ok');
    });
  });

  describe('Sentinel', function () {
    let servers: RedisSentinelServers;
    before(async function () {
      servers = await startRedisSentinel(1_000, { password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
    });
    after(async function () {
      await servers?.stop();
    });

    const env = (sentinelPassword: string, password: string) => ({
      REDIS_SENTINELS: servers.sentinels,
      REDIS_SENTINEL_MASTER: SENTINEL_MASTER,
      REDIS_SENTINEL_PASSWORD: sentinelPassword,
      REDIS_PASSWORD: password,
    });

    it('the sentinels refusing their password names REDIS_SENTINEL_PASSWORD, the master refusing its own names REDIS_PASSWORD', async function () {
      const sentinel = await checkRedis(env('nope', PASSWORD));
      expect(sentinel.status).to.equal('fail');
      expect(sentinel.fix).to.match(/REDIS_SENTINEL_PASSWORD/);
      const master = await checkRedis(env(SENTINEL_PASSWORD, 'nope'));
      expect(master.status).to.equal('fail');
      expect(master.fix).to.match(/REDIS_PASSWORD/);
      expect(master.fix).to.not.match(/SENTINEL/);
      const right = await checkRedis(env(SENTINEL_PASSWORD, PASSWORD));
      expect(right.status, right.detail).to.equal('ok');
    });
  });
});
