import { expect } from 'chai';
import { loadBridgeConfig } from '../../function/bridge/config.ts';
import { encodePathSegment, sourceUrl } from '../../function/kube/event-source.ts';
import type { StandaloneTarget } from '../../function/queue/connection.ts';

const target = (over: Partial<StandaloneTarget> = {}): StandaloneTarget => ({ kind: 'standalone', host: 'redis', port: 6379, db: 0, tls: false, ...over });

describe('event source: redis://host:port/db/key, never credentials', function () {
  it('names host, port, database and key', function () {
    expect(sourceUrl(target({ db: 3 }), 'job-robot:queue')).to.equal('redis://redis:6379/3/job-robot:queue');
  });

  it('leaves out username and password given in REDIS_URL', function () {
    const cfg = loadBridgeConfig({ K_SINK: 'http://sink', HOSTNAME: 'pod', REDIS_URL: 'redis://admin:s3cret@redis.prod:6380/2' });
    expect(cfg.event.source).to.equal('redis://redis.prod:6380/2/job-robot:queue');
    expect(cfg.event.source).to.not.match(/admin|s3cret/);
    expect(cfg.redis).to.include({ username: 'admin', password: 's3cret', host: 'redis.prod', port: 6380, db: 2 });
  });

  it('leaves out REDIS_PASSWORD from a Secret', function () {
    const cfg = loadBridgeConfig({ K_SINK: 'http://sink', HOSTNAME: 'pod', REDIS_HOST: 'r', REDIS_PASSWORD: 'hunter2' });
    expect(cfg.event.source).to.equal('redis://r:6379/0/job-robot:queue');
  });

  it('is the same with and without TLS (the source is part of each Job identity)', function () {
    const plain = loadBridgeConfig({ K_SINK: 'http://sink', HOSTNAME: 'pod', REDIS_URL: 'redis://r:6379/0' });
    const tls = loadBridgeConfig({ K_SINK: 'http://sink', HOSTNAME: 'pod', REDIS_URL: 'rediss://r:6379/0' });
    expect(tls.redis.tls).to.equal(true);
    expect(tls.event.source).to.equal(plain.event.source);
  });

  it('brackets an IPv6 host', function () {
    expect(sourceUrl(target({ host: '::1' }), 'q')).to.equal('redis://[::1]:6379/0/q');
    const cfg = loadBridgeConfig({ K_SINK: 'http://sink', HOSTNAME: 'pod', REDIS_URL: 'redis://[fd00::5]:7000/1' });
    expect(cfg.redis).to.include({ kind: 'standalone', host: 'fd00::5' });
    expect(cfg.event.source).to.equal('redis://[fd00::5]:7000/1/job-robot:queue');
  });

  it('percent-encodes what a path segment cannot hold: slashes, braces, spaces, non-ASCII', function () {
    expect(encodePathSegment('a/b')).to.equal('a%2Fb');
    expect(encodePathSegment('orders:{jobs}:queue')).to.equal('orders:%7Bjobs%7D:queue');
    expect(encodePathSegment('my queue')).to.equal('my%20queue');
    expect(encodePathSegment('ü')).to.equal('%C3%BC');
    expect(encodePathSegment('100%')).to.equal('100%25');
    expect(encodePathSegment('keep:@!$&()*+,;=-._~')).to.equal('keep:@!$&()*+,;=-._~');
  });

  it('a slash in the key cannot be mistaken for another path segment', function () {
    const url = new URL(sourceUrl(target(), 'team/a'));
    expect(url.pathname.split('/')).to.have.length(3);
    expect(decodeURIComponent(url.pathname.split('/')[2]!)).to.equal('team/a');
  });

  it('EVENT_SOURCE pins the source when the Redis address may change', function () {
    const cfg = loadBridgeConfig({ K_SINK: 'http://sink', HOSTNAME: 'pod', EVENT_SOURCE: 'redis://orders/queue' });
    expect(cfg.event.source).to.equal('redis://orders/queue');
  });
});
