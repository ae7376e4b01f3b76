import { expect } from 'chai';
import { ConfigError } from '../../function/config/base.ts';
import { loadDeadLetterConfig, MIN_REQUEST_BYTES } from '../../function/dead-letter/config.ts';
import { parseManifests } from '../helpers/kube.ts';
import { readRepoFile } from '../helpers/paths.ts';
import { DEFAULT_SENDERS } from '../../function/auth/senders.ts';
import { DEFAULT_RESULT_SETTINGS } from '../../function/queue/results.ts';
/** As Knative runs it: K_SERVICE names the Service, the default token audience. */
const load = (env: NodeJS.ProcessEnv) => loadDeadLetterConfig({ K_SERVICE: 'job-robot-dead-letter', ...env });

describe('dead-letter sink config', function () {
  it('defaults: the base, the local Redis, the default queue\'s dead-letter stream, 8 MiB requests, 1 MiB items', function () {
    const { keys, ...rest } = load({});
    expect(keys.deadLetter).to.equal('{job-robot:queue}:dead-letter');
    expect(keys.results).to.equal('{job-robot:queue}:results');
    expect(rest).to.deep.equal({
      logLevel: 'info',
      namespace: undefined,
      instance: undefined,
      port: 8080,
      auth: { enabled: true, audience: 'job-robot-dead-letter', senders: DEFAULT_SENDERS.deadLetter, clockSkewSeconds: 30 },
      kubeTimeoutSeconds: 10,
      redis: { kind: 'standalone', host: '127.0.0.1', port: 6379, db: 0, username: undefined, password: undefined, tls: false, ca: undefined },
      results: DEFAULT_RESULT_SETTINGS,
      itemType: 'dev.job-robot.queue.item',
      maxRequestBytes: 8 * 1024 * 1024,
      maxItemBytes: 1024 * 1024,
    });
  });

  it('DEAD_LETTER names the stream; MAX_REQUEST_BYTES bounds a request, DEAD_LETTER_MAX_ITEM_BYTES an item', function () {
    const c = load({ QUEUE_KEY: 'orders', DEAD_LETTER: '{orders}:dead', MAX_REQUEST_BYTES: '2097152', DEAD_LETTER_MAX_ITEM_BYTES: '4096', PORT: '0' });
    expect(c).to.deep.include({ maxRequestBytes: 2097152, maxItemBytes: 4096, port: 0 });
    expect(c.keys.deadLetter).to.equal('{orders}:dead');
  });

  it("DEAD_LETTER off the queue's Redis Cluster slot stops the start: the record and its result are written in one step", function () {
    expect(() => load({ QUEUE_KEY: 'orders', DEAD_LETTER: 'orders-dead' })).to.throw(ConfigError, /DEAD_LETTER.*hash tag/s);
  });

  it("MAX_REQUEST_BYTES below the launcher's 1 MiB plus 64 KiB stops the start, naming the variable", function () {
    expect(load({ MAX_REQUEST_BYTES: String(MIN_REQUEST_BYTES) }).maxRequestBytes).to.equal(1024 * 1024 + 64 * 1024);
    for (const below of [String(MIN_REQUEST_BYTES - 1), String(1024 * 1024), '10']) {
      expect(() => load({ MAX_REQUEST_BYTES: below }), below).to.throw(ConfigError, /^invalid configuration: MAX_REQUEST_BYTES: must be at least 1114112 \(1 MiB \+ 64 KiB\)[^;]*$/);
    }
  });

  it('DEAD_LETTER_MAX_ITEM_BYTES may not exceed MAX_REQUEST_BYTES: an item is cut from what was read', function () {
    expect(() => load({ MAX_REQUEST_BYTES: '2097152', DEAD_LETTER_MAX_ITEM_BYTES: '2097153' })).to.throw(ConfigError, /DEAD_LETTER_MAX_ITEM_BYTES: must not exceed MAX_REQUEST_BYTES/);
    expect(load({ MAX_REQUEST_BYTES: '2097152', DEAD_LETTER_MAX_ITEM_BYTES: '2097152' }).maxItemBytes).to.equal(2097152);
    expect(() => load({ DEAD_LETTER_MAX_ITEM_BYTES: '10' })).to.throw(ConfigError, /DEAD_LETTER_MAX_ITEM_BYTES/);
  });

  it("config/dead-letter.yaml's limits start the sink", function () {
    const [service] = parseManifests(readRepoFile('config/dead-letter.yaml')) as unknown as Array<{
      spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value: string }> }> } } };
    }>;
    const env = Object.fromEntries(service!.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
    expect(load(env)).to.deep.include({ maxRequestBytes: 8 * 1024 * 1024, maxItemBytes: 1024 * 1024 });
  });

  it('refuses what the bridge refuses, naming the variable: the Redis cross-variable check applies', function () {
    expect(() => load({ REDIS_URL: 'redis://x', REDIS_HOST: 'y' })).to.throw(ConfigError, /REDIS_HOST: set either REDIS_URL/);
    expect(() => load({ REDIS_SENTINELS: 's:1' })).to.throw(ConfigError, /REDIS_SENTINEL_MASTER/);
    expect(() => load({ MAX_REQUEST_BYTES: '10' })).to.throw(ConfigError, /MAX_REQUEST_BYTES/);
  });
});
