/**
 * kube/rest.ts, kube/watch.ts and kube/credentials.ts against the real API server: the credentials
 * a pod has (a ServiceAccount token file, rotated), refusals read like the client library's, strict
 * creates, bounded answers, one connection for many calls, deadlines, and watches. Connections are
 * counted (and stalled) by a TCP relay in front of the server: TLS passes through it untouched.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Job } from '@kubernetes/client-node';
import { kubeFailure } from '../../function/kube/api-error.ts';
import { inClusterCredentials, kubeconfigCredentials, type Credentials } from '../../function/kube/credentials.ts';
import { createJob, jobsPath, listJobs, readJob } from '../../function/kube/jobs-api.ts';
import { IdleTimeout, KubeApiError, KubeRest } from '../../function/kube/rest.ts';
import { watch, type WatchEvent } from '../../function/kube/watch.ts';
import { plainJob } from '../helpers/jobs.ts';
import { adminKubeconfigPath, eventually, grantRole, rejection, serviceAccountConfig, useNamespace } from '../helpers/kube.ts';
import { ensureServiceAccount } from '../helpers/tokens.ts';

/** A TCP relay to the API server that counts connections and, while `stalled`, forwards nothing. */
class Relay {
  connections = 0;
  stalled = false;
  port = 0;
  private readonly server: Server;
  private readonly open = new Set<Socket>();

  constructor(target: URL) {
    this.server = createServer((client) => {
      this.connections++;
      this.open.add(client);
      client.once('close', () => this.open.delete(client));
      client.on('error', () => undefined);
      if (this.stalled) return;
      const upstream = connect(Number(target.port), target.hostname);
      this.open.add(upstream);
      upstream.once('close', () => this.open.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}


describe('kube/rest.ts: the functions\u2019 API client on the real API server', function () {
  this.timeout(60_000);
  const ns = useNamespace('rest');
  let admin: Credentials;
  let rest: KubeRest;
  let relay: Relay;
  let saDir: string;

  /** Credentials as a pod of ServiceAccount `sa` meets them, through the relay. */
  const podCredentials = (now?: () => number) => inClusterCredentials({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(relay.port) }, saDir, now);

  /** A token of ServiceAccount `name` for the API server's own audience, as the kubelet mounts it. */
  const tokenOf = async (name: string) => (await serviceAccountConfig(ns.kc, ns.name, name)).getCurrentUser()!.token!;

  before(async function () {
    admin = kubeconfigCredentials(adminKubeconfigPath());
    relay = await new Relay(new URL(admin.server)).start();
    saDir = mkdtempSync(join(tmpdir(), 'jr-sa-'));
    writeFileSync(join(saDir, 'ca.crt'), admin.tls.ca ?? '');
    writeFileSync(join(saDir, 'namespace'), ns.name);
    await ensureServiceAccount(ns.kc, ns.name, 'nobody');
    await ensureServiceAccount(ns.kc, ns.name, 'lister');
    await grantRole(ns.kc, ns.name, 'lister', 'list-jobs', [{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['list'] }]);
  });
  beforeEach(function () {
    relay.stalled = false;
    relay.connections = 0;
    rest = new KubeRest({ ...admin, server: `https://127.0.0.1:${relay.port}` }, { timeoutMs: 10_000 });
  });
  afterEach(function () {
    rest.close();
  });
  after(async function () {
    await relay?.stop();
    if (saDir) rmSync(saDir, { recursive: true, force: true });
  });

  it('creates a Job from its exact JSON and reads it back, with the admin kubeconfig\u2019s token', async function () {
    expect(await admin.authorization()).to.match(/^Bearer ./);
    await createJob(rest, ns.name, JSON.stringify(plainJob('exact', { labels: { suite: 'rest' } })));
    const job = await readJob(rest, ns.name, 'exact');
    expect(job.metadata?.labels).to.deep.equal({ suite: 'rest' });
    const list = await listJobs(rest, ns.name, { labelSelector: 'suite=rest' });
    expect(list.items.map((j) => j.metadata?.name)).to.deep.equal(['exact']);
  });

  it('a field the API server does not know fails the create (strict), naming the field', async function () {
    const job = plainJob('typo') as V1Job & { spec: { backofLimit?: number } };
    job.spec.backofLimit = 3;
    const err = await rejection(createJob(rest, ns.name, JSON.stringify(job)));
    expect(err).to.be.instanceOf(KubeApiError);
    const f = kubeFailure(err);
    expect(f.code).to.equal(400);
    expect(f.message).to.include('unknown field').and.include('backofLimit');
    expect(await rejection(readJob(rest, ns.name, 'typo'))).to.have.property('code', 404);
  });

  it('a dry-run create judges the Job and creates nothing', async function () {
    await createJob(rest, ns.name, JSON.stringify(plainJob('dry')), { dryRun: true });
    const f = kubeFailure(await rejection(readJob(rest, ns.name, 'dry')));
    expect(f).to.include({ code: 404, reason: 'NotFound' });
  });

  it('a second create of one name is a 409 AlreadyExists, read like the client library\u2019s', async function () {
    await createJob(rest, ns.name, JSON.stringify(plainJob('twice')));
    const f = kubeFailure(await rejection(createJob(rest, ns.name, JSON.stringify(plainJob('twice')))));
    expect(f).to.include({ code: 409, reason: 'AlreadyExists' });
  });

  it('many calls, one after another, share one connection; concurrent calls open no more than they need', async function () {
    for (let i = 0; i < 20; i++) await listJobs(rest, ns.name, { limit: 1 });
    expect(relay.connections).to.equal(1);
    await Promise.all(Array.from({ length: 4 }, () => listJobs(rest, ns.name, { limit: 1 })));
    expect(relay.connections).to.be.at.most(4);
    const afterBurst = relay.connections;
    for (let i = 0; i < 10; i++) await listJobs(rest, ns.name, { limit: 1 });
    expect(relay.connections, 'calls after a burst reuse its connections').to.equal(afterBurst);
  });

  it('an answer beyond maxBytes fails before it is held, and the next call still works', async function () {
    await createJob(rest, ns.name, JSON.stringify(plainJob('big-answer')));
    const err = await rejection(rest.get(jobsPath(ns.name), { maxBytes: 200 }));
    expect((err as Error).message).to.include('exceeds 200 bytes');
    expect((await listJobs(rest, ns.name, {})).items.length).to.be.at.least(1);
  });

  it('a silent connection fails the call at its deadline as a network failure (code 0)', async function () {
    relay.stalled = true;
    const started = performance.now();
    const err = await rejection(listJobs(new KubeRest({ ...admin, server: `https://127.0.0.1:${relay.port}` }, { timeoutMs: 300 }), ns.name, {}));
    expect(err).to.be.instanceOf(IdleTimeout);
    expect(kubeFailure(err).code).to.equal(0);
    expect(performance.now() - started).to.be.below(5_000);
  });

  it('an aborted call rejects at once', async function () {
    relay.stalled = true;
    const ac = new AbortController();
    const call = rest.get(jobsPath(ns.name), { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect((await rejection(call)) as Error).to.have.property('name', 'AbortError');
  });

  it('in a pod: the ServiceAccount token is sent; a refusal is a 403 Forbidden naming the identity', async function () {
    writeFileSync(join(saDir, 'token'), await tokenOf('nobody'));
    const pod = new KubeRest(podCredentials(), { timeoutMs: 10_000 });
    try {
      const f = kubeFailure(await rejection(listJobs(pod, ns.name, {})));
      expect(f).to.include({ code: 403, reason: 'Forbidden' });
      expect(f.message).to.include(`system:serviceaccount:${ns.name}:nobody`);
    } finally {
      pod.close();
    }
  });

  it('in a pod: a rotated token file is used once it is read again, on the same connection', async function () {
    writeFileSync(join(saDir, 'token'), await tokenOf('nobody'));
    let now = 0;
    const pod = new KubeRest(podCredentials(() => now), { timeoutMs: 10_000 });
    try {
      expect(kubeFailure(await rejection(listJobs(pod, ns.name, {}))).code).to.equal(403);
      writeFileSync(join(saDir, 'token'), await tokenOf('lister'));
      expect(kubeFailure(await rejection(listJobs(pod, ns.name, {}))).code, 'read again before a minute has passed').to.equal(403);
      now = 60_000;
      expect((await listJobs(pod, ns.name, {})).kind).to.equal('JobList');
      expect(relay.connections).to.equal(1);
    } finally {
      pod.close();
    }
  });

  it('a watch hands over each event once, parsed, and ends when aborted', async function () {
    const seen: Array<WatchEvent<V1Job>> = [];
    const ac = new AbortController();
    const ended = watch<V1Job>(rest, jobsPath(ns.name), { labelSelector: 'watched=yes' }, (e) => seen.push(e), { signal: ac.signal });
    // The watch starts from now (no resourceVersion: existing Jobs arrive as ADDED first).
    await createJob(rest, ns.name, JSON.stringify(plainJob('watched-1', { labels: { watched: 'yes' } })));
    await createJob(rest, ns.name, JSON.stringify(plainJob('ignored', { labels: { watched: 'no' } })));
    await createJob(rest, ns.name, JSON.stringify(plainJob('watched-2', { labels: { watched: 'yes' } })));
    await eventually(async () => new Set(seen.map((e) => e.object.metadata?.name)).size === 2, 10_000, 'both watched Jobs');
    ac.abort();
    await ended;
    const names = new Set(seen.map((e) => e.object.metadata?.name));
    expect([...names].sort()).to.deep.equal(['watched-1', 'watched-2']);
    expect(seen.filter((e) => e.type === 'ADDED')).to.have.length(2);
  });

  it('a watch event longer than maxLineBytes fails the watch instead of being held', async function () {
    await createJob(rest, ns.name, JSON.stringify(plainJob('long-line', { labels: { long: 'yes' } })));
    const ac = new AbortController();
    const err = await rejection(watch(rest, jobsPath(ns.name), { labelSelector: 'long=yes' }, () => undefined, { signal: ac.signal, maxLineBytes: 100 }));
    expect((err as Error).message).to.include('exceeds 100 bytes');
  });

  it('a refused watch rejects with the refusal', async function () {
    writeFileSync(join(saDir, 'token'), await tokenOf('lister'));
    const pod = new KubeRest(podCredentials(), { timeoutMs: 10_000 });
    try {
      const f = kubeFailure(await rejection(watch(pod, jobsPath(ns.name), {}, () => undefined, { signal: new AbortController().signal })));
      expect(f).to.include({ code: 403, reason: 'Forbidden' });
    } finally {
      pod.close();
    }
  });

  it('a watch whose connection goes silent ends at idleMs, so the caller can start again', async function () {
    const ac = new AbortController();
    const started = performance.now();
    // No event arrives for this selector; the server's own timeout is far off.
    await watch(rest, jobsPath(ns.name), { labelSelector: 'nothing=here', timeoutSeconds: 300 }, () => undefined, { signal: ac.signal, idleMs: 500 });
    expect(performance.now() - started).to.be.within(400, 10_000);
  });
});
