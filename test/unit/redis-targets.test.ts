import { rootCertificates } from 'node:tls';
import { expect } from 'chai';
import { ReplyError } from 'ioredis';
import { loadBridgeConfig } from '../../function/bridge/config.ts';
import { sourceUrl } from '../../function/kube/event-source.ts';
import { clusterOptions, describeTarget, redisOptions } from '../../function/queue/connection.ts';
import { connectionHint } from '../../function/queue/diagnosis.ts';
import { ConfigError } from '../../function/config/base.ts';
import { loadRedisSettings } from '../../function/config/redis.ts';

describe('Redis targets: single server, Cluster seeds, Sentinel', function () {
  it('REDIS_CLUSTER_NODES makes a cluster target with its seeds; IPv6 seeds in brackets', function () {
    const { redis } = loadRedisSettings({ REDIS_CLUSTER_NODES: 'redis-0:7000, redis-1:7001,[fd00::5]:7002', REDIS_PASSWORD: 's' });
    expect(redis).to.deep.include({
      kind: 'cluster',
      nodes: [{ host: 'redis-0', port: 7000 }, { host: 'redis-1', port: 7001 }, { host: 'fd00::5', port: 7002 }],
      password: 's',
    });
  });

  it('a seed without a port, or with port 0, names the variable', function () {
    expect(() => loadRedisSettings({ REDIS_CLUSTER_NODES: 'redis-0' })).to.throw(ConfigError, /REDIS_CLUSTER_NODES.*host:port/);
    expect(() => loadRedisSettings({ REDIS_CLUSTER_NODES: 'redis-0:0' })).to.throw(ConfigError, /REDIS_CLUSTER_NODES/);
    expect(() => loadRedisSettings({ REDIS_CLUSTER_NODES: ' , ' })).to.throw(ConfigError, /at least one/);
  });

  it('cluster seeds and a single-server address together are refused, and so is a database other than 0', function () {
    expect(() => loadRedisSettings({ REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://b' })).to.throw(ConfigError, /REDIS_URL/);
    expect(() => loadRedisSettings({ REDIS_CLUSTER_NODES: 'a:1', REDIS_DB: '2' })).to.throw(ConfigError, /REDIS_DB.*only database 0/);
    expect(() => loadRedisSettings({ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:1', REDIS_SENTINEL_MASTER: 'm' })).to.throw(ConfigError, /REDIS_SENTINELS/);
  });

  it('REDIS_SENTINELS needs REDIS_SENTINEL_MASTER; sentinel settings alone are refused', function () {
    expect(() => loadRedisSettings({ REDIS_SENTINELS: 's:26379' })).to.throw(ConfigError, /REDIS_SENTINEL_MASTER/);
    expect(() => loadRedisSettings({ REDIS_SENTINEL_PASSWORD: 'x' })).to.throw(ConfigError, /REDIS_SENTINEL_PASSWORD.*REDIS_SENTINELS/);
  });

  it('a sentinel target carries the master name, database and both passwords', function () {
    const { redis } = loadRedisSettings({
      REDIS_SENTINELS: 's0:26379,s1:26379', REDIS_SENTINEL_MASTER: 'jobs', REDIS_DB: '3', REDIS_PASSWORD: 'data', REDIS_SENTINEL_PASSWORD: 'watch',
    });
    expect(redis).to.deep.include({ kind: 'sentinel', master: 'jobs', db: 3, password: 'data', sentinelPassword: 'watch' });
    const options = redisOptions(redis, 'x');
    expect(options).to.include({ name: 'jobs', db: 3, password: 'data', sentinelPassword: 'watch' });
    expect(options.host).to.equal(undefined);
  });

  it('sentinel over TLS: the master is dialled with TLS too, and the sentinels follow REDIS_TLS unless REDIS_SENTINEL_TLS says otherwise', function () {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const env = { REDIS_SENTINELS: 's0:26379', REDIS_SENTINEL_MASTER: 'jobs', REDIS_TLS: 'true', REDIS_TLS_CA: ca };
    const both = redisOptions(loadRedisSettings(env).redis, 'x');
    // ioredis dials the master the sentinels name in plain TCP unless enableTLSForSentinelMode is set.
    expect(both.enableTLSForSentinelMode).to.equal(true);
    expect(both.tls?.ca).to.deep.equal([...rootCertificates, ca]);
    expect(both.sentinelTLS?.ca).to.deep.equal([...rootCertificates, ca]);
    // Sentinels are dialled by the addresses they announce: no fixed servername.
    expect(both.tls).to.not.have.property('servername');
    expect(both.sentinelTLS).to.not.have.property('servername');
    const plainSentinels = redisOptions(loadRedisSettings({ ...env, REDIS_SENTINEL_TLS: 'false' }).redis, 'x');
    expect(plainSentinels).to.include({ enableTLSForSentinelMode: true, sentinelTLS: undefined });
    const tlsSentinelsOnly = redisOptions(loadRedisSettings({ REDIS_SENTINELS: 's0:26379', REDIS_SENTINEL_MASTER: 'jobs', REDIS_SENTINEL_TLS: 'yes' }).redis, 'x');
    expect(tlsSentinelsOnly).to.include({ enableTLSForSentinelMode: false, tls: undefined });
    expect(tlsSentinelsOnly.sentinelTLS).to.deep.equal({ ca: undefined });
    expect(() => loadRedisSettings({ REDIS_SENTINEL_TLS: 'true' })).to.throw(ConfigError, /REDIS_SENTINEL_TLS.*REDIS_SENTINELS/);
  });

  it('cluster over TLS: every node verified by the address it is dialled at (no servername), with REDIS_TLS_CA added to the system roots', function () {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const { redis } = loadRedisSettings({ REDIS_CLUSTER_NODES: 'a:1', REDIS_PASSWORD: 'p', REDIS_TLS: 'true', REDIS_TLS_CA: ca });
    if (redis.kind !== 'cluster') throw new Error('not a cluster target');
    const node = clusterOptions(redis, 'conn').redisOptions!;
    expect(node.tls).to.deep.equal({ ca: [...rootCertificates, ca] });
    expect(node.password).to.equal('p');
    const single = redisOptions(loadRedisSettings({ REDIS_URL: 'rediss://redis.example:6380/0' }).redis, 'x');
    expect(single.tls).to.deep.equal({ servername: 'redis.example', ca: undefined });
  });

  it('connection hints name the variable for a refused password or an untrusted certificate, from a node or a sentinel', function () {
    const wrongPass = new ReplyError('WRONGPASS invalid username-password pair or user is disabled.') as Error;
    const noAuth = new ReplyError('NOAUTH Authentication required.') as Error;
    const untrusted = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    const table: [Error, 'node' | 'sentinel', RegExp | undefined][] = [
      [wrongPass, 'node', /check REDIS_USERNAME and REDIS_PASSWORD$/],
      [noAuth, 'node', /check REDIS_USERNAME and REDIS_PASSWORD$/],
      [wrongPass, 'sentinel', /check REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD$/],
      [untrusted, 'node', /server's certificate is not trusted: check REDIS_TLS_CA$/],
      [untrusted, 'sentinel', /sentinel's certificate is not trusted: check REDIS_TLS_CA$/],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'node', undefined],
      [new ReplyError('LOADING Redis is loading the dataset in memory') as Error, 'node', undefined],
      [new Error('WRONGPASS in a plain message is not a reply'), 'node', undefined],
    ];
    for (const [err, from, hint] of table) {
      const got = connectionHint(err, from);
      if (hint) expect(got, err.message).to.match(hint);
      else expect(got, err.message).to.equal(undefined);
    }
  });

  it('cluster options: masters only, commands wait through a failover, node options carry auth', function () {
    const { redis } = loadRedisSettings({ REDIS_CLUSTER_NODES: 'a:1', REDIS_USERNAME: 'u', REDIS_PASSWORD: 'p' });
    if (redis.kind !== 'cluster') throw new Error('not a cluster target');
    const options = clusterOptions(redis, 'conn', true);
    expect(options).to.include({ scaleReads: 'master', enableOfflineQueue: true });
    expect(options.retryDelayOnFailover).to.be.above(0);
    expect(options.redisOptions).to.include({ username: 'u', password: 'p', connectionName: 'conn', blockingTimeout: 30_000 });
    expect(options.redisOptions).to.not.have.property('db');
    expect(clusterOptions(redis, 'doctor', false, { retryStrategy: () => null }).clusterRetryStrategy!(1)).to.equal(null);
  });

  it('event source: stable across seed order and failovers, never credentials', function () {
    const a = loadBridgeConfig({ K_SINK: 'http://sink', HOSTNAME: 'pod', REDIS_CLUSTER_NODES: 'r-1:7001,r-0:7000', REDIS_PASSWORD: 'secret' });
    const b = loadBridgeConfig({ K_SINK: 'http://sink', HOSTNAME: 'pod', REDIS_CLUSTER_NODES: 'r-0:7000,r-1:7001' });
    expect(a.event.source).to.equal('redis+cluster://r-0:7000/job-robot:queue');
    expect(b.event.source).to.equal(a.event.source);
    const s = loadBridgeConfig({ K_SINK: 'http://sink', HOSTNAME: 'pod', REDIS_SENTINELS: 's:1', REDIS_SENTINEL_MASTER: 'jobs', REDIS_DB: '2' });
    expect(s.event.source).to.equal('redis+sentinel://jobs/2/job-robot:queue');
    expect(sourceUrl(s.redis, 'a b')).to.equal('redis+sentinel://jobs/2/a%20b');
  });

  it('describes each kind for people, without credentials', function () {
    expect(describeTarget(loadRedisSettings({ REDIS_CLUSTER_NODES: 'a:1,b:2', REDIS_PASSWORD: 'secret' }).redis)).to.equal('redis cluster seeded by a:1,b:2');
    const s = loadRedisSettings({ REDIS_SENTINELS: 's:1', REDIS_SENTINEL_MASTER: 'jobs', REDIS_SENTINEL_PASSWORD: 'secret' }).redis;
    expect(describeTarget(s)).to.equal('redis master "jobs" (db 0) via sentinels s:1');
  });
});
