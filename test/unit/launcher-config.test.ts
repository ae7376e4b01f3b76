import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../function/config/base.ts';
import { QUEUE_ITEM_TYPE } from '../../function/events.ts';
import { loadLauncherConfig } from '../../function/launcher/config.ts';
import { DEFAULT_TEMPLATE, loadTemplate, parseTemplate } from '../../function/kube/job-template.ts';
import { DEFAULT_SENDERS } from '../../function/auth/senders.ts';
/** As Knative runs it: K_SERVICE names the Service, the default token audience. */
const load = (env: NodeJS.ProcessEnv) => loadLauncherConfig({ K_SERVICE: 'job-robot-launcher', ...env });

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    load(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('launcher config', function () {
  it('defaults', function () {
    expect(load({})).to.deep.equal({
      logLevel: 'info',
      namespace: undefined,
      instance: undefined,
      port: 8080,
      auth: { enabled: true, audience: 'job-robot-launcher', senders: DEFAULT_SENDERS.launcher, clockSkewSeconds: 30 },
      kubeTimeoutSeconds: 10,
      jobTemplatePath: undefined,
      jobNamePrefix: 'job-robot-',
      acceptedTypes: [QUEUE_ITEM_TYPE],
      maxEventBytes: 65536,
      maxRequestBytes: 1048576,
      maxBatchEvents: 100,
      maxActiveJobs: 100,
      jobTtlSeconds: 604800,
      activeDeadlineSeconds: undefined,
      jobServiceAccount: 'job-robot-job',
      argsField: undefined,
      retryAfterSeconds: 10,
    });
  });

  it('each variable reaches its own camelCased field', function () {
    const c = load({
      LOG_LEVEL: 'warn',
      NAMESPACE: 'jobs',
      INSTANCE: 'blue',
      PORT: '0',
      KUBE_TIMEOUT_SECONDS: '3',
      JOB_TEMPLATE_PATH: '/etc/job-robot/job.yaml',
      JOB_NAME_PREFIX: 'blue-',
      ACCEPTED_TYPES: 'a.b',
      MAX_EVENT_BYTES: '2048',
      MAX_REQUEST_BYTES: '4096',
      MAX_BATCH_EVENTS: '7',
      MAX_ACTIVE_JOBS: '0',
      JOB_TTL_SECONDS: '60',
      ACTIVE_DEADLINE_SECONDS: '600',
      JOB_SERVICE_ACCOUNT: 'runner',
      ARGS_FIELD: 'args',
      RETRY_AFTER_SECONDS: '5',
      OIDC_AUDIENCE: 'launcher.example',
      OIDC_ALLOWED_SENDERS: 'trigger-sa, system:serviceaccount:other:sender',
      OIDC_CLOCK_SKEW_SECONDS: '5',
    });
    expect(c).to.deep.equal({
      logLevel: 'warn',
      namespace: 'jobs',
      instance: 'blue',
      port: 0,
      auth: { enabled: true, audience: 'launcher.example', senders: ['trigger-sa', 'system:serviceaccount:other:sender'], clockSkewSeconds: 5 },
      kubeTimeoutSeconds: 3,
      jobTemplatePath: '/etc/job-robot/job.yaml',
      jobNamePrefix: 'blue-',
      acceptedTypes: ['a.b'],
      maxEventBytes: 2048,
      maxRequestBytes: 4096,
      maxBatchEvents: 7,
      maxActiveJobs: 0,
      jobTtlSeconds: 60,
      activeDeadlineSeconds: 600,
      jobServiceAccount: 'runner',
      argsField: 'args',
      retryAfterSeconds: 5,
    });
  });

  it('MAX_EVENT_BYTES: at most 131052, so that one variable holding it all is still one exec string; beyond, the start fails saying why', function () {
    expect(load({ MAX_EVENT_BYTES: '131052' }).maxEventBytes).to.equal(131052);
    expect(configError({ MAX_EVENT_BYTES: '131053' }).message).to.contain('MAX_EVENT_BYTES: must be at most 131052').and.contain('131072 bytes (MAX_ARG_STRLEN)');
  });

  it('ACCEPTED_TYPES is a comma list; ACTIVE_DEADLINE_SECONDS empty means unset', function () {
    const c = load({ ACCEPTED_TYPES: ' a.b , c.d ,', ACTIVE_DEADLINE_SECONDS: '' });
    expect(c.acceptedTypes).to.deep.equal(['a.b', 'c.d']);
    expect(c.activeDeadlineSeconds).to.equal(undefined);
  });

  it('every bad value names its variable', function () {
    const rows: Array<[NodeJS.ProcessEnv, string]> = [
      [{ JOB_NAME_PREFIX: 'Upper-' }, 'JOB_NAME_PREFIX'],
      [{ JOB_NAME_PREFIX: 'p'.repeat(40) }, 'JOB_NAME_PREFIX'],
      [{ PORT: '70000' }, 'PORT'],
      [{ MAX_EVENT_BYTES: '10' }, 'MAX_EVENT_BYTES'],
      [{ MAX_EVENT_BYTES: '131053' }, 'MAX_EVENT_BYTES'],
      [{ MAX_EVENT_BYTES: String(512 * 1024) }, 'MAX_EVENT_BYTES'],
      [{ MAX_ACTIVE_JOBS: '-1' }, 'MAX_ACTIVE_JOBS'],
      [{ JOB_SERVICE_ACCOUNT: 'job-robot' }, 'JOB_SERVICE_ACCOUNT'],
      [{ JOB_SERVICE_ACCOUNT: 'Not_Valid' }, 'JOB_SERVICE_ACCOUNT'],
      [{ ARGS_FIELD: 'a.b' }, 'ARGS_FIELD'],
      [{ ACCEPTED_TYPES: ' , ' }, 'ACCEPTED_TYPES'],
      [{ RETRY_AFTER_SECONDS: '0' }, 'RETRY_AFTER_SECONDS'],
      [{ KUBE_TIMEOUT_SECONDS: '0' }, 'KUBE_TIMEOUT_SECONDS'],
      [{ ACTIVE_DEADLINE_SECONDS: 'soon' }, 'ACTIVE_DEADLINE_SECONDS'],
    ];
    for (const [env, variable] of rows) {
      const err = configError(env);
      expect(err.variables, JSON.stringify(env)).to.deep.equal([variable]);
      expect(err.message).to.contain(variable);
    }
  });
});

describe('launcher template', function () {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'jr-template-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (text: string) => {
    const path = join(dir, `t-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, text);
    return path;
  };

  it('unset: the built-in pi Job (perl, bpi(2000), restartPolicy Never, backoffLimit 4), frozen', function () {
    const t = loadTemplate(undefined);
    expect(t).to.deep.equal(DEFAULT_TEMPLATE);
    expect(t.spec!.backoffLimit).to.equal(4);
    expect(t.spec!.template.spec!.restartPolicy).to.equal('Never');
    expect(t.spec!.template.spec!.containers[0]).to.deep.include({ image: 'perl', command: ['perl', '-Mbignum=bpi', '-wle', 'print bpi(2000)'] });
    expect(Object.isFrozen(t.spec!.template.spec!.containers[0])).to.equal(true);
  });

  it('reads YAML and JSON; the file\'s fields are kept as written', function () {
    const yaml = loadTemplate(file('apiVersion: batch/v1\nkind: Job\nspec:\n  parallelism: 1\n  template:\n    spec:\n      restartPolicy: OnFailure\n      containers:\n        - name: c\n          image: busybox\n          futureField: kept\n'));
    expect((yaml.spec!.template.spec!.containers[0] as unknown as Record<string, unknown>)['futureField']).to.equal('kept');
    const json = loadTemplate(file(JSON.stringify(DEFAULT_TEMPLATE)));
    expect(json).to.deep.equal(DEFAULT_TEMPLATE);
  });

  it('refuses what is not one batch/v1 Job, naming JOB_TEMPLATE_PATH and the field', function () {
    const rows: Array<[string, RegExp]> = [
      ['kind: Pod\napiVersion: v1\n', /kind/],
      ['apiVersion: batch/v1\nkind: Job\nspec: {template: {spec: {containers: []}}}\n', /spec\.template\.spec\.containers/],
      ['apiVersion: batch/v1\nkind: Job\nspec: {template: {spec: {containers: [{name: c}]}}}\n', /image/],
      ['apiVersion: batch/v1\nkind: Job\nspec: {template: {spec: {serviceAccountName: job-robot, containers: [{name: c, image: x}]}}}\n', /must not be job-robot/],
      ['a: [\n', /not valid YAML/],
      ['---\nkind: Job\n---\nkind: Job\n', /exactly one document, found 2/],
      ['', /exactly one document, found 0/],
    ];
    for (const [text, pattern] of rows) {
      try {
        parseTemplate(text, 't.yaml');
        throw new Error(`accepted: ${text}`);
      } catch (err) {
        expect(err, text).to.be.instanceOf(ConfigError);
        expect((err as ConfigError).variables).to.deep.equal(['JOB_TEMPLATE_PATH']);
        expect((err as Error).message, text).to.match(pattern).and.to.contain('JOB_TEMPLATE_PATH');
      }
    }
  });
});
