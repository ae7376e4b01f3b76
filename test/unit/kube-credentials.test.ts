import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError } from '../../function/config/base.ts';
import { credentialsAtStart, credentialsFromKubeconfig, CredentialsError, inClusterCredentials, kubeconfigCredentials } from '../../function/kube/credentials.ts';

/** A kubeconfig with one context `c` joining cluster `k` and user `u`. */
function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown> | undefined, context: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'c',
    clusters: [{ name: 'k', cluster: { server: 'https://10.0.0.1:6443', ...cluster } }],
    users: user ? [{ name: 'u', user }] : [],
    contexts: [{ name: 'c', context: { cluster: 'k', ...(user ? { user: 'u' } : {}), ...context } }],
  });
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(CredentialsError);
    return (err as Error).message;
  }
  throw new Error('expected a CredentialsError');
};

describe('kube credentials: a kubeconfig read the way client-go reads it', function () {
  let dir: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'jr-creds-'));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('an inline token becomes a Bearer header; the server loses its trailing slash', async function () {
    const c = credentialsFromKubeconfig(kubeconfig({ server: 'https://api.example:6443/' }, { token: 'abc' }), dir);
    expect(c.server).to.equal('https://api.example:6443');
    expect(await c.authorization()).to.equal('Bearer abc');
    expect(c.tls.rejectUnauthorized).to.equal(true);
  });

  it('a server under a path prefix keeps the prefix', function () {
    expect(credentialsFromKubeconfig(kubeconfig({ server: 'https://gw.example/k8s/cluster-1//' }, { token: 't' }), dir).server).to.equal('https://gw.example/k8s/cluster-1');
  });

  it('a tokenFile relative to the kubeconfig is read from beside it, trimmed', async function () {
    writeFileSync(join(dir, 'token'), 'from-file\n');
    const c = credentialsFromKubeconfig(kubeconfig({}, { tokenFile: 'token' }), dir);
    expect(await c.authorization()).to.equal('Bearer from-file');
  });

  it('an empty token file is refused at start, naming the file', function () {
    writeFileSync(join(dir, 'token'), '\n');
    expect(refusal(() => credentialsFromKubeconfig(kubeconfig({}, { tokenFile: 'token' }), dir))).to.include(join(dir, 'token')).and.include('empty');
  });

  it('a username and password become a Basic header', async function () {
    const c = credentialsFromKubeconfig(kubeconfig({}, { username: 'ann', password: 's3:cret' }), dir);
    expect(await c.authorization()).to.equal(`Basic ${b64('ann:s3:cret')}`);
  });

  it('client certificate and key, as data or as files, go to TLS and send no Authorization', async function () {
    writeFileSync(join(dir, 'client.key'), 'KEY');
    const c = credentialsFromKubeconfig(kubeconfig({ 'certificate-authority-data': b64('CA') }, { 'client-certificate-data': b64('CERT'), 'client-key': 'client.key' }), dir);
    expect(c.tls.ca?.toString()).to.equal('CA');
    expect(c.tls.cert?.toString()).to.equal('CERT');
    expect(c.tls.key?.toString()).to.equal('KEY');
    expect(await c.authorization()).to.equal(undefined);
  });

  it('-data wins over the file of the same field (the file is not read)', function () {
    const c = credentialsFromKubeconfig(kubeconfig({ 'certificate-authority-data': b64('inline'), 'certificate-authority': 'missing.crt' }, { token: 't' }), dir);
    expect(c.tls.ca?.toString()).to.equal('inline');
  });

  it('insecure-skip-tls-verify and tls-server-name reach TLS', function () {
    const c = credentialsFromKubeconfig(kubeconfig({ 'insecure-skip-tls-verify': true, 'tls-server-name': 'kubernetes.default' }, { token: 't' }), dir);
    expect(c.tls.rejectUnauthorized).to.equal(false);
    expect(c.tls.servername).to.equal('kubernetes.default');
  });

  it("the context's namespace is carried; none leaves it unset", function () {
    expect(credentialsFromKubeconfig(kubeconfig({}, { token: 't' }, { namespace: 'work' }), dir).namespace).to.equal('work');
    expect(credentialsFromKubeconfig(kubeconfig({}, { token: 't' }), dir).namespace).to.equal(undefined);
  });

  it('a context without a user authenticates by nothing but TLS', async function () {
    expect(await credentialsFromKubeconfig(kubeconfig({}, undefined), dir).authorization()).to.equal(undefined);
  });

  it('an exec plugin is refused with the alternatives, not run', function () {
    const msg = refusal(() => credentialsFromKubeconfig(kubeconfig({}, { exec: { command: 'touch', args: [join(dir, 'ran')], apiVersion: 'client.authentication.k8s.io/v1' } }), dir));
    expect(msg).to.include('exec plugin').and.include('token').and.include('ServiceAccount');
    expect(existsSync(join(dir, 'ran')), 'the plugin ran').to.equal(false);
  });

  it('an auth provider is refused', function () {
    expect(refusal(() => credentialsFromKubeconfig(kubeconfig({}, { 'auth-provider': { name: 'oidc' } }), dir))).to.include('auth provider');
  });

  it('a proxy-url is refused rather than silently bypassed', function () {
    expect(refusal(() => credentialsFromKubeconfig(kubeconfig({ 'proxy-url': 'http://proxy:3128' }, { token: 't' }), dir))).to.include('proxy-url');
  });

  it('no current-context, an unknown context, cluster or user: each refused by name', function () {
    expect(refusal(() => credentialsFromKubeconfig(stringify({ clusters: [] }), dir))).to.include('current-context');
    expect(refusal(() => credentialsFromKubeconfig(stringify({ 'current-context': 'gone', contexts: [] }), dir))).to.include('"gone"').and.include('contexts');
    const text = stringify({ 'current-context': 'c', contexts: [{ name: 'c', context: { cluster: 'k9', user: 'u' } }], clusters: [] });
    expect(refusal(() => credentialsFromKubeconfig(text, dir))).to.include('"k9"').and.include('clusters');
    const noUser = kubeconfig({}, undefined, { user: 'who' });
    expect(refusal(() => credentialsFromKubeconfig(noUser, dir))).to.include('"who"').and.include('users');
  });

  it('a cluster without a server is refused', function () {
    const text = stringify({ 'current-context': 'c', contexts: [{ name: 'c', context: { cluster: 'k' } }], clusters: [{ name: 'k', cluster: {} }] });
    expect(refusal(() => credentialsFromKubeconfig(text, dir))).to.include('no server');
  });

  it('an empty document is refused, not read as a config', function () {
    expect(refusal(() => credentialsFromKubeconfig('', dir))).to.include('current-context');
  });

  it('kubeconfigCredentials resolves relative files against the kubeconfig\u2019s own folder', async function () {
    writeFileSync(join(dir, 'ca.crt'), 'CA-FILE');
    writeFileSync(join(dir, 'config'), kubeconfig({ 'certificate-authority': 'ca.crt' }, { token: 't' }));
    expect(kubeconfigCredentials(join(dir, 'config')).tls.ca?.toString()).to.equal('CA-FILE');
  });
});

describe('kube credentials at start: a failure names the variable', function () {
  it('an unreadable KUBECONFIG is a ConfigError naming KUBECONFIG and the path', function () {
    const path = join(tmpdir(), 'jr-no-such-kubeconfig');
    try {
      credentialsAtStart(path);
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(/^KUBECONFIG: /).and.include(path);
      return;
    }
    throw new Error('expected a ConfigError');
  });

  it('a flag names itself as the source', function () {
    expect(() => credentialsAtStart(join(tmpdir(), 'jr-no-such-kubeconfig'), '--kubeconfig')).to.throw(ConfigError, /^--kubeconfig: /);
  });
});

describe('kube credentials in a pod: the ServiceAccount files', function () {
  let dir: string;
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'jr-sa-'));
    writeFileSync(join(dir, 'token'), 'first\n');
    writeFileSync(join(dir, 'ca.crt'), 'SA-CA');
    writeFileSync(join(dir, 'namespace'), 'team-a\n');
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('server from the service variables, CA and namespace from the files, TLS verified', async function () {
    const c = inClusterCredentials(env, dir);
    expect(c.server).to.equal('https://10.96.0.1:443');
    expect(c.tls).to.deep.include({ rejectUnauthorized: true });
    expect(c.tls.ca?.toString()).to.equal('SA-CA');
    expect(c.namespace).to.equal('team-a');
    expect(await c.authorization()).to.equal('Bearer first');
  });

  it('an IPv6 service host is bracketed in the URL', function () {
    expect(inClusterCredentials({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir).server).to.equal('https://[fd00::1]:443');
  });

  it('without both service variables it refuses, naming them', function () {
    expect(() => inClusterCredentials({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, dir)).to.throw(CredentialsError, /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT/);
  });

  it('a missing token file fails the start', function () {
    rmSync(join(dir, 'token'));
    expect(() => inClusterCredentials(env, dir)).to.throw(/token/);
  });

  it('the rotated token is read once a minute has passed, not before', async function () {
    let now = 0;
    const c = inClusterCredentials(env, dir, () => now);
    writeFileSync(join(dir, 'token'), 'second');
    now = 59_999;
    expect(await c.authorization()).to.equal('Bearer first');
    now = 60_000;
    expect(await c.authorization()).to.equal('Bearer second');
  });

  it('a token file caught mid-replacement keeps the token read last', async function () {
    let now = 0;
    const c = inClusterCredentials(env, dir, () => now);
    rmSync(join(dir, 'token'));
    now = 61_000;
    expect(await c.authorization()).to.equal('Bearer first');
    writeFileSync(join(dir, 'token'), 'third');
    now = 122_000;
    expect(await c.authorization()).to.equal('Bearer third');
  });
});
