/**
 * The launcher as the container runs it: `node function/cli.ts launcher`, a child process.
 */
import { expect } from 'chai';
import { request } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchV1Api, type KubeConfig } from '@kubernetes/client-node';
import { jobName } from '../../function/kube/names.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { asJobRobot, kubeconfigFile, postBinary, postStructured, spawnLauncher, structured, waitReady, type ChildLauncher } from '../helpers/launcher.ts';
import { eventually, useNamespace } from '../helpers/kube.ts';

const JOBS = /^\/apis\/batch\/v1\/namespaces\/[^/]+\/jobs$/;

/** Sends `body` with the given headers over a raw HTTP request; resolves with the status or the socket error. */
function rawPost(url: string, headers: Record<string, string>, body: Buffer | (() => AsyncIterable<Buffer>)): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(`${url}/`, { method: 'POST', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
    if (Buffer.isBuffer(body)) req.end(body);
    else
      void (async () => {
        try {
          for await (const chunk of body()) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
          req.end();
        } catch {
          // the server may close the socket mid-upload after answering 413
        }
      })();
  });
}

describe('launcher process: node function/cli.ts launcher', function () {
  const ns = useNamespace('proc');
  let robot: KubeConfig;
  let kubeconfig: { path: string; remove(): void };

  before(async function () {
    robot = await asJobRobot(ns.kc, ns.name);
    kubeconfig = kubeconfigFile(robot);
  });
  after(function () {
    kubeconfig?.remove();
  });

  describe('configuration errors stop the process at start, naming the variable', function () {
    // A template whose own env value is over Linux's 128 KiB limit on one exec string.
    const hugeTemplate = join(mkdtempSync(join(tmpdir(), 'job-robot-template-')), 'job.yaml');
    writeFileSync(
      hugeTemplate,
      JSON.stringify({ apiVersion: 'batch/v1', kind: 'Job', spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', env: [{ name: 'BIG', value: 'x'.repeat(200 * 1024) }] }] } } } }),
    );
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['JOB_NAME_PREFIX', { JOB_NAME_PREFIX: 'Bad_Prefix' }, /JOB_NAME_PREFIX/],
      ['MAX_EVENT_BYTES', { MAX_EVENT_BYTES: 'lots' }, /MAX_EVENT_BYTES/],
      ['JOB_SERVICE_ACCOUNT', { JOB_SERVICE_ACCOUNT: 'job-robot' }, /JOB_SERVICE_ACCOUNT: must not be job-robot/],
      ['JOB_TEMPLATE_PATH (missing file)', { JOB_TEMPLATE_PATH: '/nonexistent/job.yaml' }, /JOB_TEMPLATE_PATH: cannot read \/nonexistent\/job.yaml/],
      ['JOB_TEMPLATE_PATH (not a Job)', { JOB_TEMPLATE_PATH: 'config/rbac.yaml' }, /JOB_TEMPLATE_PATH: config\/rbac.yaml must hold exactly one document/],
      ['JOB_TEMPLATE_PATH (too large for any Job)', { JOB_TEMPLATE_PATH: hugeTemplate }, /JOB_TEMPLATE_PATH: even the smallest event's Job is too large: .*BIG/],
      ['KUBECONFIG', { KUBECONFIG: '/nonexistent/kubeconfig' }, /KUBECONFIG: cannot load \/nonexistent\/kubeconfig/],
    ];
    for (const [name, env, pattern] of cases) {
      it(`${name}: exit 78 and a message naming it`, async function () {
        const l = await spawnLauncher({ KUBECONFIG: kubeconfig.path, NAMESPACE: ns.name, ...env }, { waitListening: false });
        // Stopped before listening, with one line on stderr and no stack trace.
        const { code } = await l.exited;
        expect(code).to.equal(78);
        expect(l.stderr()).to.match(pattern);
        expect(l.stderr()).to.not.match(/\n\s+at /);
        expect(l.stdout()).to.not.contain('launcher listening');
      });
    }
  });

  describe('serving', function () {
    let l: ChildLauncher;
    before(async function () {
      l = await spawnLauncher({ KUBECONFIG: kubeconfig.path, NAMESPACE: ns.name, MAX_ACTIVE_JOBS: '1000' });
      await waitReady(l.url);
    });
    after(async function () {
      await l?.stop();
    });

    it('answers 202 for an event and the Job exists', async function () {
      const res = await postBinary(l.url, { id: 'proc-1' });
      expect(res.status).to.equal(202);
      await ns.kc.makeApiClient(BatchV1Api).readNamespacedJob({ name: jobName('job-robot-', '/test', 'proc-1'), namespace: ns.name });
    });

    it('hostile CloudEvents get 4xx and the process stays up', async function () {
      const ce = { 'ce-specversion': '1.0', 'ce-id': 'h-1', 'ce-source': '/h', 'ce-type': 'dev.job-robot.queue.item' };
      const deep = (n: number) => Buffer.from('['.repeat(n) + ']'.repeat(n));
      const cases: Array<[string, Promise<number | string>, number | Array<number | string>]> = [
        ['missing ce-id', rawPost(l.url, { ...ce, 'ce-id': '', 'content-type': 'application/json' }, Buffer.from('{}')), 400],
        ['missing ce-source', rawPost(l.url, { 'ce-specversion': '1.0', 'ce-id': 'x', 'ce-type': 't', 'content-type': 'application/json' }, Buffer.from('{}')), 400],
        ['specversion 0.3', rawPost(l.url, { ...ce, 'ce-specversion': '0.3', 'content-type': 'application/json' }, Buffer.from('{}')), 400],
        ['specversion 2.0 structured', rawPost(l.url, { 'content-type': 'application/cloudevents+json' }, Buffer.from(JSON.stringify({ ...structured('s'), specversion: '2.0' }))), 400],
        ['broken JSON data', rawPost(l.url, { ...ce, 'content-type': 'application/json' }, Buffer.from('{"a":')), 400],
        ['broken structured JSON', rawPost(l.url, { 'content-type': 'application/cloudevents+json' }, Buffer.from('{"specversion":"1.0",')), 400],
        ['a structured event that is an array', rawPost(l.url, { 'content-type': 'application/cloudevents+json' }, Buffer.from('[1,2]')), 400],
        ['a batch that is an object', rawPost(l.url, { 'content-type': 'application/cloudevents-batch+json' }, Buffer.from('{}')), 400],
        ['not a CloudEvent: text/plain without ce- headers', rawPost(l.url, { 'content-type': 'text/plain' }, Buffer.from('hello')), 415],
        ['an unknown CloudEvents format', rawPost(l.url, { 'content-type': 'application/cloudevents+xml' }, Buffer.from('<e/>')), 415],
        ['no content type and no ce- headers', rawPost(l.url, {}, Buffer.from('x')), 415],
        ['invalid UTF-8 in text data', rawPost(l.url, { ...ce, 'content-type': 'text/plain' }, Buffer.from([0xc3, 0x28])), 400],
        ['a control character in the id', rawPost(l.url, { 'content-type': 'application/cloudevents+json' }, Buffer.from(JSON.stringify(structured('bad\u0001id')))), 400],
        ['a source that is not a URI reference', rawPost(l.url, { 'content-type': 'application/cloudevents+json' }, Buffer.from(JSON.stringify({ ...structured('s2'), source: 'not a uri' }))), 400],
        ['an invalid percent-encoding in ce-id', rawPost(l.url, { ...ce, 'ce-id': '100%', 'content-type': 'application/json' }, Buffer.from('{}')), 400],
        ['10 MB with Content-Length', rawPost(l.url, { ...ce, 'content-type': 'application/json' }, Buffer.alloc(10 * 1024 * 1024, 0x20)), 413],
        [
          '10 MB chunked',
          rawPost(l.url, { ...ce, 'content-type': 'application/octet-stream' }, async function* () {
            for (let i = 0; i < 160; i++) yield Buffer.alloc(64 * 1024, 1);
          }),
          413,
        ],
        ['a 1,000-event batch', rawPost(l.url, { 'content-type': 'application/cloudevents-batch+json' }, Buffer.from(JSON.stringify(Array.from({ length: 1000 }, (_, i) => structured(`b${i}`))))), 413],
        ['data nested 100,000 deep (binary mode)', rawPost(l.url, { ...ce, 'content-type': 'application/json' }, deep(100_000)), 400],
        [
          'data nested 100,000 deep (structured mode)',
          rawPost(l.url, { 'content-type': 'application/cloudevents+json' }, Buffer.concat([Buffer.from(JSON.stringify(structured('deep')).slice(0, -1) + ',"data":'), deep(100_000), Buffer.from('}')])),
          400,
        ],
        // Node's HTTP parser answers 431 and closes the socket; a client still writing may see only the reset.
        ['a 64 KiB header', rawPost(l.url, { ...ce, 'ce-subject': 'x'.repeat(64 * 1024), 'content-type': 'application/json' }, Buffer.from('{}')), [431, 'ECONNRESET']],
      ];
      const results = await Promise.all(cases.map(([, p]) => p));
      const table = cases.map(([name, , want], i) => [name, want, results[i]]);
      const wrong = table.filter(([, want, got]) => (Array.isArray(want) ? !want.includes(got as number | string) : want !== got));
      expect(wrong, JSON.stringify(table, null, 1)).to.deep.equal([]);

      expect(l.child.exitCode).to.equal(null);
      expect((await fetch(`${l.url}/health/liveness`)).status).to.equal(200);
      expect((await postBinary(l.url, { id: 'after-the-storm' })).status).to.equal(202);
      expect(l.stderr()).to.not.match(/Uncaught|TypeError|RangeError/);
    });

    it('every hostile request was answered once and logged once, below warn', function () {
      const lines = l.stdout().split('\n').filter(Boolean).map((s) => JSON.parse(s) as { level: string; status?: number });
      const answered = lines.filter((x) => typeof x.status === 'number' && x.status >= 400 && x.status < 500);
      expect(answered.length).to.be.at.least(15);
      expect(answered.filter((x) => x.level !== 'info')).to.deep.equal([]);
    });

    it('a structured batch works end to end in the process', async function () {
      const res = await postStructured(l.url, [structured('pb-1'), structured('pb-2')], 'application/json');
      expect(res.status).to.equal(202);
      expect(((await res.json()) as { jobs: unknown[] }).jobs).to.have.length(2);
    });
  });

  describe('SIGTERM', function () {
    let proxy: FaultProxy;
    before(async function () {
      proxy = await new FaultProxy(ns.kc).start();
    });
    after(async function () {
      await proxy.stop();
    });

    it('stops accepting, finishes the request in flight with 202, exits 0', async function () {
      const kcFile = kubeconfigFile(proxy.through(robot));
      const l = await spawnLauncher({ KUBECONFIG: kcFile.path, NAMESPACE: ns.name, MAX_ACTIVE_JOBS: '0' });
      try {
        await waitReady(l.url);
        let arrived!: () => void;
        const createArrived = new Promise<void>((r) => (arrived = r));
        proxy.rules = [{ method: 'POST', path: JOBS, fault: { delayMs: 1500 }, onMatch: () => arrived() }];

        const inFlight = postBinary(l.url, { id: 'in-flight-1' });
        await createArrived;
        l.child.kill('SIGTERM');
        let settled = false;
        void inFlight.finally(() => (settled = true));
        // New connections are refused while the create is still in flight.
        await eventually(async () => {
          try {
            await fetch(`${l.url}/health/liveness`);
            return false;
          } catch {
            return true;
          }
        }, 1000, 'the listener to close');
        expect(settled, 'the in-flight request was cut short').to.equal(false);

        const res = await inFlight;
        expect(res.status).to.equal(202);
        const answeredAt = Date.now();
        expect(await l.exited).to.deep.equal({ code: 0, signal: null });
        // The client's keep-alive connection must not hold the exit for the 30 s grace period.
        expect(Date.now() - answeredAt).to.be.below(5000);
        await ns.kc.makeApiClient(BatchV1Api).readNamespacedJob({ name: jobName('job-robot-', '/test', 'in-flight-1'), namespace: ns.name });
        expect(l.stdout()).to.contain('shutting down');
      } finally {
        await l.stop();
        kcFile.remove();
      }
    });
  });
});
