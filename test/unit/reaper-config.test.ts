import { expect } from 'chai';
import { ConfigError } from '../../function/config/base.ts';
import { loadReaperConfig, parseDuration } from '../../function/reaper/config.ts';
import { DEFAULT_SENDERS } from '../../function/auth/senders.ts';
/** As Knative runs it: K_SERVICE names the Service, the default token audience. */
const load = (env: NodeJS.ProcessEnv) => loadReaperConfig({ K_SERVICE: 'job-robot-reaper', ...env });

const H = 3_600_000;

describe('reaper config', function () {
  it('defaults: succeeded 2 h keep 0, failed 24 h keep 5, concurrency 10, page 500, dry run off, port 8080, API deadline 10 s', function () {
    expect(load({})).to.deep.equal({
      logLevel: 'info',
      namespace: undefined,
      instance: undefined,
      port: 8080,
      auth: { enabled: true, audience: 'job-robot-reaper', senders: DEFAULT_SENDERS.reaper, clockSkewSeconds: 30 },
      kubeTimeoutSeconds: 10,
      policy: { succeeded: { maxAgeMs: 2 * H, keep: 0 }, failed: { maxAgeMs: 24 * H, keep: 5 } },
      concurrency: 10,
      pageSize: 500,
      dryRun: false,
      queue: undefined,
      results: { retentionSeconds: 86_400, streamMaxLen: 100_000 },
    });
  });

  it('reads every variable, and the shared base ones', function () {
    const c = load({
      REAPER_SUCCEEDED_MAX_AGE: '30m',
      REAPER_FAILED_MAX_AGE: '7d',
      REAPER_SUCCEEDED_KEEP: '3',
      REAPER_FAILED_KEEP: '0',
      REAPER_CONCURRENCY: '4',
      REAPER_PAGE_SIZE: '50',
      REAPER_DRY_RUN: 'true',
      NAMESPACE: 'jobs',
      INSTANCE: 'blue',
      LOG_LEVEL: 'warn',
      PORT: '0',
      KUBE_TIMEOUT_SECONDS: '30',
    });
    expect(c.policy).to.deep.equal({ succeeded: { maxAgeMs: 30 * 60_000, keep: 3 }, failed: { maxAgeMs: 7 * 24 * H, keep: 0 } });
    expect(c).to.deep.include({ concurrency: 4, pageSize: 50, dryRun: true, logLevel: 'warn', namespace: 'jobs', instance: 'blue', port: 0, kubeTimeoutSeconds: 30 });
  });

  it('a bad value stops start-up with an error naming each variable', function () {
    try {
      load({ REAPER_FAILED_MAX_AGE: 'a day', REAPER_CONCURRENCY: '0', REAPER_FAILED_KEEP: '-1', REAPER_DRY_RUN: 'perhaps' });
      expect.fail('accepted bad configuration');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).variables).to.have.members(['REAPER_FAILED_MAX_AGE', 'REAPER_CONCURRENCY', 'REAPER_FAILED_KEEP', 'REAPER_DRY_RUN']);
      expect((err as Error).message).to.match(/REAPER_FAILED_MAX_AGE: must be a duration such as 90s, 30m, 1h, 7d or 1h30m/);
    }
  });

  it('a keep count beyond the bounded heap is refused', function () {
    expect(() => load({ REAPER_FAILED_KEEP: '10001' })).to.throw(ConfigError, /REAPER_FAILED_KEEP/);
  });

  describe('parseDuration', function () {
    const ok: Array<[string, number]> = [
      ['90s', 90_000],
      ['30m', 30 * 60_000],
      ['1h', H],
      ['7d', 7 * 24 * H],
      ['1h30m', 90 * 60_000],
      ['1d2h3m4s', 24 * H + 2 * H + 3 * 60_000 + 4000],
      ['3600', H],
      ['0', 0],
      ['0s', 0],
      [' 2h ', 2 * H],
    ];
    for (const [text, ms] of ok) it(`reads ${JSON.stringify(text)}`, () => expect(parseDuration(text)).to.equal(ms));

    const bad = ['', 'h', '1.5h', '-1h', '1x', '30m1h', '1 h', '1H', 'soon'];
    for (const text of bad) it(`refuses ${JSON.stringify(text)}`, () => expect(parseDuration(text)).to.equal(undefined));
  });

  it('refuses a retention beyond ten years', function () {
    expect(() => load({ REAPER_SUCCEEDED_MAX_AGE: '3651d' })).to.throw(ConfigError, /REAPER_SUCCEEDED_MAX_AGE/);
  });

  describe('the in-flight check (the bridge\'s queue variables)', function () {
    it('is off without a Redis address', function () {
      expect(load({}).queue).to.equal(undefined);
      expect(load({ QUEUE_KEY: 'orders', MODE: 'stream' }).queue).to.equal(undefined);
    });

    it('a Redis URL turns it on for the default queue, in list mode, with the bridge\'s event source', function () {
      expect(load({ REDIS_URL: 'redis://redis.queues:6379/2' }).queue).to.deep.equal({
        redis: { kind: 'standalone', host: 'redis.queues', port: 6379, db: 2, username: undefined, password: undefined, tls: false, ca: undefined },
        queueKey: 'job-robot:queue',
        mode: 'list',
        group: 'job-robot',
        source: 'redis://redis.queues:6379/2/job-robot:queue',
      });
    });

    it('reads the queue, mode, group and a pinned source; Cluster and Sentinel addresses turn it on too', function () {
      const stream = load({ REDIS_CLUSTER_NODES: 'a:7000,b:7001', QUEUE_KEY: '{orders}:q', MODE: 'stream', STREAM_GROUP: 'g', EVENT_SOURCE: 'urn:orders' }).queue;
      expect(stream).to.deep.include({ queueKey: '{orders}:q', mode: 'stream', group: 'g', source: 'urn:orders' });
      expect(stream!.redis.kind).to.equal('cluster');
      const sentinel = load({ REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_MASTER: 'mymaster' }).queue;
      expect(sentinel!.redis.kind).to.equal('sentinel');
    });

    it('refuses what the bridge refuses, naming the variable', function () {
      expect(() => load({ REDIS_URL: 'http://x' })).to.throw(ConfigError, /REDIS_URL/);
      expect(() => load({ REDIS_URL: 'redis://x', REDIS_HOST: 'y' })).to.throw(ConfigError, /REDIS_HOST/);
      expect(() => load({ REDIS_SENTINELS: 's:1' })).to.throw(ConfigError, /REDIS_SENTINEL_MASTER/);
      expect(() => load({ MODE: 'queue' })).to.throw(ConfigError, /MODE/);
      expect(() => load({ QUEUE_KEY: 'a}b' })).to.throw(ConfigError, /QUEUE_KEY/);
    });
  });

  describe('the results backstop (the bridge\'s results variables)', function () {
    it('reads RESULT_RETENTION_SECONDS and RESULTS_MAX_LEN as the bridge does', function () {
      expect(load({ RESULT_RETENTION_SECONDS: '3600', RESULTS_MAX_LEN: '5000' }).results).to.deep.equal({ retentionSeconds: 3600, streamMaxLen: 5000 });
    });

    it('refuses a retention under a minute, naming the variable', function () {
      expect(() => load({ RESULT_RETENTION_SECONDS: '59' })).to.throw(ConfigError, /RESULT_RETENTION_SECONDS/);
      expect(() => load({ RESULTS_MAX_LEN: 'many' })).to.throw(ConfigError, /RESULTS_MAX_LEN/);
    });
  });
});
