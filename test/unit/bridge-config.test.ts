import { expect } from 'chai';
import { DEFAULT_RESULT_SETTINGS } from '../../function/queue/results.ts';
import { ConfigError } from '../../function/config/base.ts';
import { loadBridgeConfig } from '../../function/bridge/config.ts';

const base = { K_SINK: 'http://broker-ingress.knative-eventing.svc/ns/default', HOSTNAME: 'bridge-abc12' };

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadBridgeConfig(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  return expect.fail(`accepted ${JSON.stringify(env)}`);
}

describe('bridge config: defaults', function () {
  it('needs only K_SINK; everything else has a default', function () {
    const cfg = loadBridgeConfig(base);
    expect(cfg).to.deep.include({
      port: 8080,
      queueKey: 'job-robot:queue',
      mode: 'list',
      listEnd: 'left',
      concurrency: 16,
      maxAttempts: 20,
      backoff: { minMs: 200, maxMs: 60_000 },
      sendTimeoutMs: 15_000,
      leaseMs: 30_000,
      claimWait: { replicas: 0, timeoutMs: 1_000 },
      shutdownGraceMs: 20_000,
      consumer: 'bridge-abc12',
      deadLetterKey: undefined,
    });
    expect(cfg.redis).to.deep.include({ host: '127.0.0.1', port: 6379, db: 0, tls: false });
    expect(cfg.stream).to.deep.equal({ group: 'job-robot', field: 'data', deleteAcked: true });
    expect(cfg.event).to.deep.equal({ type: 'dev.job-robot.queue.item', source: 'redis://127.0.0.1:6379/0/job-robot:queue', extensions: {} });
  });

  it('CLAIM_WAIT_REPLICAS and CLAIM_WAIT_MS: how many replicas must hold a claim, and for how long to wait', function () {
    expect(loadBridgeConfig({ ...base, CLAIM_WAIT_REPLICAS: '1', CLAIM_WAIT_MS: '250' }).claimWait).to.deep.equal({ replicas: 1, timeoutMs: 250 });
    expect(errorOf({ ...base, CLAIM_WAIT_REPLICAS: '-1' }).variables).to.deep.equal(['CLAIM_WAIT_REPLICAS']);
    expect(errorOf({ ...base, CLAIM_WAIT_MS: '0' }).variables).to.deep.equal(['CLAIM_WAIT_MS']);
  });

  it('MAX_ITEM_BYTES: 64 KiB by default (the launcher\'s MAX_EVENT_BYTES); a claim\'s budget is CONCURRENCY items of it', function () {
    expect(loadBridgeConfig(base).intake).to.deep.equal({ maxItemBytes: 65_536, batchBytes: 16 * 65_536, results: DEFAULT_RESULT_SETTINGS });
    expect(loadBridgeConfig({ ...base, MAX_ITEM_BYTES: '4096', CONCURRENCY: '3' }).intake).to.deep.include({ maxItemBytes: 4096, batchBytes: 3 * 4096 });
    expect(errorOf({ ...base, MAX_ITEM_BYTES: '100' }).variables).to.deep.equal(['MAX_ITEM_BYTES']);
    expect(errorOf({ ...base, MAX_ITEM_BYTES: String(16 * 1024 * 1024 + 1) }).variables).to.deep.equal(['MAX_ITEM_BYTES']);
  });

  it("OIDC_TOKEN_FILE: Knative's /oidc/token, optional by default, required when set; checked every 5 s", function () {
    expect(loadBridgeConfig(base).token).to.deep.equal({ file: '/oidc/token', required: false, checkEveryMs: 5_000 });
    expect(loadBridgeConfig({ ...base, OIDC_TOKEN_FILE: '/var/run/token', OIDC_TOKEN_CHECK_MS: '250' }).token).to.deep.equal({
      file: '/var/run/token',
      required: true,
      checkEveryMs: 250,
    });
    expect(errorOf({ ...base, OIDC_TOKEN_FILE: '' }).variables).to.deep.equal(['OIDC_TOKEN_FILE']);
    expect(errorOf({ ...base, OIDC_TOKEN_CHECK_MS: '10' }).variables).to.deep.equal(['OIDC_TOKEN_CHECK_MS']);
  });

  it('CONSUMER wins over HOSTNAME', function () {
    expect(loadBridgeConfig({ ...base, CONSUMER: 'replica-1' }).consumer).to.equal('replica-1');
  });

  it('separate REDIS_* variables build the connection', function () {
    const cfg = loadBridgeConfig({ ...base, REDIS_HOST: 'redis.svc', REDIS_PORT: '6380', REDIS_DB: '4', REDIS_USERNAME: 'bridge', REDIS_PASSWORD: 'pw', REDIS_TLS: 'true' });
    expect(cfg.redis).to.deep.include({ host: 'redis.svc', port: 6380, db: 4, username: 'bridge', password: 'pw', tls: true });
  });

  it('REDIS_PASSWORD from a Secret overrides a password in REDIS_URL', function () {
    expect(loadBridgeConfig({ ...base, REDIS_URL: 'redis://:old@r:6379', REDIS_PASSWORD: 'new' }).redis.password).to.equal('new');
  });

  it('percent-encoded credentials in REDIS_URL are decoded', function () {
    expect(loadBridgeConfig({ ...base, REDIS_URL: 'redis://u%40x:p%3Aw@r' }).redis).to.include({ username: 'u@x', password: 'p:w' });
  });

  it('K_CE_OVERRIDES extensions become strings', function () {
    const cfg = loadBridgeConfig({ ...base, K_CE_OVERRIDES: '{"extensions":{"team":"blue","tier":2,"beta":true}}' });
    expect(cfg.event.extensions).to.deep.equal({ team: 'blue', tier: '2', beta: 'true' });
  });

  it('K_CE_OVERRIDES without extensions is accepted', function () {
    expect(loadBridgeConfig({ ...base, K_CE_OVERRIDES: '{}' }).event.extensions).to.deep.equal({});
  });

  it('a dead-letter key carrying the queue hash tag is accepted', function () {
    expect(loadBridgeConfig({ ...base, DEAD_LETTER: '{job-robot:queue}:dlq' }).deadLetterKey).to.equal('{job-robot:queue}:dlq');
  });
});

describe('bridge config: a bad value names its variable', function () {
  const cases: [string, Record<string, string>, string, RegExp][] = [
    ['K_SINK missing', { HOSTNAME: 'pod' }, 'K_SINK', /required/],
    ['K_SINK not http(s)', { ...base, K_SINK: 'ftp://sink' }, 'K_SINK', /http/],
    ['K_SINK not a URL', { ...base, K_SINK: 'broker' }, 'K_SINK', /URL/],
    ['MODE unknown', { ...base, MODE: 'pubsub' }, 'MODE', /list|stream/],
    ['LIST_END unknown', { ...base, LIST_END: 'middle' }, 'LIST_END', /left|right/],
    ['CONCURRENCY zero', { ...base, CONCURRENCY: '0' }, 'CONCURRENCY', /./],
    ['CONCURRENCY not a number', { ...base, CONCURRENCY: 'many' }, 'CONCURRENCY', /./],
    ['MAX_ATTEMPTS zero', { ...base, MAX_ATTEMPTS: '0' }, 'MAX_ATTEMPTS', /./],
    ['LEASE_MS too short', { ...base, LEASE_MS: '10' }, 'LEASE_MS', /./],
    ['BACKOFF_MIN_MS above BACKOFF_MAX_MS', { ...base, BACKOFF_MIN_MS: '5000', BACKOFF_MAX_MS: '1000' }, 'BACKOFF_MIN_MS', /BACKOFF_MAX_MS/],
    ['REDIS_URL with another scheme', { ...base, REDIS_URL: 'http://redis:6379' }, 'REDIS_URL', /redis:\/\/ or rediss:\/\//],
    ['REDIS_URL not a URL', { ...base, REDIS_URL: 'redis' }, 'REDIS_URL', /URL/],
    ['REDIS_URL with a non-numeric database', { ...base, REDIS_URL: 'redis://r/main' }, 'REDIS_URL', /database number/],
    ['REDIS_URL together with REDIS_HOST', { ...base, REDIS_URL: 'redis://r', REDIS_HOST: 'other' }, 'REDIS_HOST', /not both/],
    ['REDIS_PORT out of range', { ...base, REDIS_PORT: '70000' }, 'REDIS_PORT', /./],
    ['REDIS_TLS not a boolean', { ...base, REDIS_TLS: 'sometimes' }, 'REDIS_TLS', /./],
    ['REDIS_TLS_CA not PEM', { ...base, REDIS_TLS_CA: '/etc/ca.crt' }, 'REDIS_TLS_CA', /PEM/],
    ['K_CA_CERTS not PEM', { ...base, K_CA_CERTS: 'yes' }, 'K_CA_CERTS', /PEM/],
    ['K_CE_OVERRIDES not JSON', { ...base, K_CE_OVERRIDES: '{extensions:' }, 'K_CE_OVERRIDES', /JSON/],
    ['K_CE_OVERRIDES overriding the id', { ...base, K_CE_OVERRIDES: '{"extensions":{"id":"x"}}' }, 'K_CE_OVERRIDES', /context attribute/],
    ['K_CE_OVERRIDES with an upper-case name', { ...base, K_CE_OVERRIDES: '{"extensions":{"Team":"x"}}' }, 'K_CE_OVERRIDES', /lower-case/],
    ['K_CE_OVERRIDES with an object value', { ...base, K_CE_OVERRIDES: '{"extensions":{"team":{"a":1}}}' }, 'K_CE_OVERRIDES', /./],
    ['QUEUE_KEY with a stray brace', { ...base, QUEUE_KEY: 'jobs}' }, 'QUEUE_KEY', /hash tag/],
    ['QUEUE_KEY empty', { ...base, QUEUE_KEY: '' }, 'QUEUE_KEY', /./],
    ['DEAD_LETTER in another slot', { ...base, DEAD_LETTER: 'dead-letters' }, 'DEAD_LETTER', /\{job-robot:queue\}:dead-letter/],
    ['DEAD_LETTER equal to the queue', { ...base, QUEUE_KEY: '{q}', DEAD_LETTER: '{q}' }, 'DEAD_LETTER', /differ/],
    ['CONSUMER with a space', { ...base, CONSUMER: 'my pod' }, 'CONSUMER', /letters/],
    ['no CONSUMER and an unusable HOSTNAME', { K_SINK: base.K_SINK, HOSTNAME: 'bad host!' }, 'CONSUMER', /HOSTNAME/],
  ];
  for (const [name, env, variable, message] of cases) {
    it(`${name}: names ${variable}`, function () {
      const err = errorOf(env);
      expect(err.variables).to.include(variable);
      expect(err.message).to.include(`${variable}`).and.match(message);
    });
  }

  it('several bad values are all named in one error', function () {
    const err = errorOf({ ...base, MODE: 'x', CONCURRENCY: '-1', K_SINK: 'nope' });
    expect(err.variables).to.have.members(['MODE', 'CONCURRENCY', 'K_SINK']);
  });
});
