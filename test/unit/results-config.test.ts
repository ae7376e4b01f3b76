import { expect } from 'chai';
import { DEFAULT_SENDERS } from '../../function/auth/senders.ts';
import { ConfigError } from '../../function/config/base.ts';
import { DEFAULT_RESULT_SETTINGS } from '../../function/queue/results.ts';
import { DEFAULT_REQUEST_BYTES, loadResultsConfig } from '../../function/results/config.ts';

/** As Knative runs it: K_SERVICE names the Service, the default token audience. */
const load = (env: NodeJS.ProcessEnv) => loadResultsConfig({ K_SERVICE: 'job-robot-results', ...env });

/** The variables a ConfigError names. */
function failing(env: NodeJS.ProcessEnv): { variables: string[]; message: string } {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return { variables: err.variables, message: err.message };
    throw err;
  }
  throw new Error(`configuration ${JSON.stringify(env)} was accepted`);
}

describe('results function config', function () {
  it('defaults: the base, the local Redis, the default queue\'s records and stream, the results Trigger as sender, 2 MiB requests', function () {
    const { keys, ...rest } = load({});
    expect(keys.result('item-1')).to.equal('{job-robot:queue}:result:item-1');
    expect(keys.results).to.equal('{job-robot:queue}:results');
    expect(rest).to.deep.equal({
      logLevel: 'info',
      namespace: undefined,
      instance: undefined,
      port: 8080,
      auth: { enabled: true, audience: 'job-robot-results', senders: DEFAULT_SENDERS.results, clockSkewSeconds: 30 },
      kubeTimeoutSeconds: 10,
      redis: { kind: 'standalone', host: '127.0.0.1', port: 6379, db: 0, username: undefined, password: undefined, tls: false, ca: undefined },
      results: DEFAULT_RESULT_SETTINGS,
      maxRequestBytes: DEFAULT_REQUEST_BYTES,
    });
    expect(DEFAULT_REQUEST_BYTES).to.equal(2 * 1024 * 1024);
  });

  it('the default sender is the Knative identity of the Trigger job-robot-results, and no other', function () {
    expect(DEFAULT_SENDERS.results).to.deep.equal(['job-robot-results-oidc-eventing.knative.dev-trigger']);
    expect(DEFAULT_SENDERS.launcher).to.not.include(DEFAULT_SENDERS.results[0]);
  });

  it('QUEUE_KEY, INSTANCE, retention, the stream cap and MAX_REQUEST_BYTES are read; a queue with a hash tag keeps it', function () {
    const c = load({ QUEUE_KEY: 'orders:{jobs}:queue', INSTANCE: 'blue', RESULT_RETENTION_SECONDS: '3600', RESULTS_MAX_LEN: '500', MAX_REQUEST_BYTES: '65536' });
    expect(c.keys.result('x')).to.equal('orders:{jobs}:queue:result:x');
    expect(c.instance).to.equal('blue');
    expect(c.results).to.deep.equal({ retentionSeconds: 3600, streamMaxLen: 500 });
    expect(c.maxRequestBytes).to.equal(65536);
  });

  it('the bridge\'s MODE and the dead-letter sink\'s variables beside it (one ConfigMap for all) do not stop the start', function () {
    expect(load({ MODE: 'stream', DEAD_LETTER: '{job-robot:queue}:dead', DEAD_LETTER_MAX_ITEM_BYTES: '4096' }).maxRequestBytes).to.equal(DEFAULT_REQUEST_BYTES);
  });

  const bad: Array<[string, NodeJS.ProcessEnv, string, RegExp]> = [
    ['MAX_REQUEST_BYTES below 64 KiB (a Job would not fit)', { MAX_REQUEST_BYTES: '1024' }, 'MAX_REQUEST_BYTES', /MAX_REQUEST_BYTES: .*65536/],
    ['MAX_REQUEST_BYTES above 64 MiB', { MAX_REQUEST_BYTES: String(65 * 1024 * 1024) }, 'MAX_REQUEST_BYTES', /MAX_REQUEST_BYTES/],
    ['MAX_REQUEST_BYTES not a number', { MAX_REQUEST_BYTES: 'lots' }, 'MAX_REQUEST_BYTES', /MAX_REQUEST_BYTES/],
    ['a queue key with a stray brace', { QUEUE_KEY: 'orders}' }, 'QUEUE_KEY', /QUEUE_KEY: must not contain "\}"/],
    ['REDIS_URL and REDIS_HOST together', { REDIS_URL: 'redis://r:6379/0', REDIS_HOST: 'other' }, 'REDIS_HOST', /REDIS_HOST: set either REDIS_URL/],
    ['a REDIS_URL that is not redis://', { REDIS_URL: 'http://r:6379' }, 'REDIS_URL', /REDIS_URL: scheme must be redis/],
    ['RESULT_RETENTION_SECONDS below a minute', { RESULT_RETENTION_SECONDS: '5' }, 'RESULT_RETENTION_SECONDS', /RESULT_RETENTION_SECONDS/],
    ['an INSTANCE that is no label value', { INSTANCE: 'blue green' }, 'INSTANCE', /INSTANCE: must be a valid label value/],
    ['OIDC on outside Knative without an audience', { K_SERVICE: undefined }, 'OIDC_AUDIENCE', /OIDC_AUDIENCE: required with OIDC_AUTHENTICATION=enabled/],
    ['OIDC_AUTHENTICATION neither enabled nor disabled', { OIDC_AUTHENTICATION: 'off' }, 'OIDC_AUTHENTICATION', /OIDC_AUTHENTICATION/],
    ['an allow-list entry that is no ServiceAccount', { OIDC_ALLOWED_SENDERS: 'Not A Name' }, 'OIDC_ALLOWED_SENDERS', /OIDC_ALLOWED_SENDERS/],
    ['KUBE_TIMEOUT_SECONDS of 0', { KUBE_TIMEOUT_SECONDS: '0' }, 'KUBE_TIMEOUT_SECONDS', /KUBE_TIMEOUT_SECONDS/],
  ];
  for (const [name, env, variable, message] of bad) {
    it(`${name} stops the start, naming ${variable}`, function () {
      const err = failing(env);
      expect(err.variables).to.include(variable);
      expect(err.message).to.match(message);
    });
  }

  it('authentication off needs no audience (local runs)', function () {
    expect(load({ K_SERVICE: undefined, OIDC_AUTHENTICATION: 'disabled' }).auth.enabled).to.equal(false);
  });
});
