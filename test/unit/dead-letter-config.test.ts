import { expect } from 'chai';
import { ConfigError } from '../../function/config/base.ts';
import { loadDeadLetterConfig } from '../../function/dead-letter/config.ts';

describe('dead-letter sink config', function () {
  it('defaults: the base, the local Redis, the default queue\'s dead-letter stream, 1 MiB requests', function () {
    expect(loadDeadLetterConfig({})).to.deep.equal({
      logLevel: 'info',
      namespace: undefined,
      instance: undefined,
      port: 8080,
      redis: { kind: 'standalone', host: '127.0.0.1', port: 6379, db: 0, username: undefined, password: undefined, tls: false, ca: undefined },
      deadLetterKey: '{job-robot:queue}:dead-letter',
      maxRequestBytes: 1024 * 1024,
    });
  });

  it('DEAD_LETTER names the stream; MAX_REQUEST_BYTES bounds a request', function () {
    const c = loadDeadLetterConfig({ QUEUE_KEY: 'orders', DEAD_LETTER: 'orders-dead', MAX_REQUEST_BYTES: '2048', PORT: '0' });
    expect(c).to.deep.include({ deadLetterKey: 'orders-dead', maxRequestBytes: 2048, port: 0 });
  });

  it('refuses what the bridge refuses, naming the variable: the Redis cross-variable check applies', function () {
    expect(() => loadDeadLetterConfig({ REDIS_URL: 'redis://x', REDIS_HOST: 'y' })).to.throw(ConfigError, /REDIS_HOST: set either REDIS_URL/);
    expect(() => loadDeadLetterConfig({ REDIS_SENTINELS: 's:1' })).to.throw(ConfigError, /REDIS_SENTINEL_MASTER/);
    expect(() => loadDeadLetterConfig({ MAX_REQUEST_BYTES: '10' })).to.throw(ConfigError, /MAX_REQUEST_BYTES/);
  });
});
