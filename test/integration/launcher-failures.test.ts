import { expect } from 'chai';
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { restOf } from '../../function/kube/client.ts';
import { ownerLabels, ownerSelector } from '../../function/kube/labels.ts';
import { jobName } from '../../function/kube/names.ts';
import { ActiveCap } from '../../function/launcher/capacity.ts';
import { createLogger } from '../../function/log.ts';
import { suspendedJob } from '../helpers/finished.ts';
import { DEFAULT_TEMPLATE, parseTemplate } from '../../function/kube/job-template.ts';
import { readRepoFile } from '../helpers/paths.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { asJobRobot, postBinary, startLauncher } from '../helpers/launcher.ts';
import { createNamespace, deleteNamespace, eventually, parseManifests, serviceAccountConfig, useNamespace } from '../helpers/kube.ts';
import { finishJobPods } from '../helpers/pods.ts';
import { strangerConfig } from '../helpers/stranger.ts';

const JOBS = /^\/apis\/batch\/v1\/namespaces\/[^/]+\/jobs$/;

describe('launcher: failures map to 500 only for its own misconfiguration, 429/503 with Retry-After otherwise', function () {
  const ns = useNamespace('fail');
  let robot: KubeConfig;
  let batch: BatchV1Api;

  before(async function () {
    robot = await asJobRobot(ns.kc, ns.name);
    batch = ns.kc.makeApiClient(BatchV1Api);
  });

  describe('permissions', function () {
    let bare: string;
    before(async function () {
      bare = await createNamespace(ns.kc, 'fail-norbac');
      await ns.kc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace: bare, body: { metadata: { name: 'job-robot' } } });
    });
    after(async function () {
      await deleteNamespace(ns.kc, bare);
    });

    it('an API-server 403 on create is a 500, and the log names the permission and kubectl apply -f config/rbac.yaml', async function () {
      const unbound = await serviceAccountConfig(ns.kc, bare, 'job-robot');
      const l = await startLauncher(unbound, bare, { MAX_ACTIVE_JOBS: '0' }, { waitReady: false });
      try {
        const res = await postBinary(l.url, { id: 'denied-1' });
        expect(res.status).to.equal(500);
        expect(((await res.json()) as { error: string }).error).to.equal('forbidden');
        const line = l.logs.find((x) => x['level'] === 'error' && x['reason'] === 'forbidden');
        expect(line, JSON.stringify(l.logs.lines)).to.not.equal(undefined);
        expect(line!['eventId']).to.equal('denied-1');
        expect(String(line!['message'])).to.contain('cannot create resource "jobs" in API group "batch"');
        expect(String(line!['fix'])).to.contain(`kubectl apply -n ${bare} -f config/rbac.yaml`);
      } finally {
        await l.close();
      }
    });

    it('missing permissions keep readiness false, naming each missing verb and the fix', async function () {
      const unbound = await serviceAccountConfig(ns.kc, bare, 'job-robot');
      const l = await startLauncher(unbound, bare, {}, { waitReady: false });
      try {
        const res = await fetch(`${l.url}/health/readiness`);
        expect(res.status).to.equal(503);
        const body = (await res.json()) as { failing: Record<string, string> };
        expect(body.failing['permissions']).to.contain('create jobs.batch, get jobs.batch, list jobs.batch, watch jobs.batch');
        expect(body.failing['permissions']).to.contain('config/rbac.yaml');
        const line = l.logs.find((x) => x['check'] === 'permissions' && x['level'] === 'error');
        expect(String(line?.['fix'])).to.contain(`kubectl apply -n ${bare} -f config/rbac.yaml`);
        // Without list, the cap cannot count: that is misconfiguration too, answered at once.
        const post = await postBinary(l.url, { id: 'denied-2' });
        expect(post.status).to.equal(500);
      } finally {
        await l.close();
      }
    });
  });

  describe('credentials', function () {
    it('credentials the API server does not accept (401): a create and a status read both answer 500 unauthorized, the log names the credentials', async function () {
      const l = await startLauncher(strangerConfig(robot), ns.name, { MAX_ACTIVE_JOBS: '0' }, { waitReady: false });
      try {
        const post = await postBinary(l.url, { id: 'stranger-1' });
        expect(post.status).to.equal(500);
        expect(((await post.json()) as { error: string }).error).to.equal('unauthorized');
        const read = await fetch(`${l.url}/jobs/${jobName('job-robot-', '/test', 'stranger-1')}`);
        expect(read.status).to.equal(500);
        expect(((await read.json()) as { error: string }).error).to.equal('unauthorized');
        const line = l.logs.find((x) => x['level'] === 'error' && x['reason'] === 'unauthorized');
        expect(String(line?.['fix']), JSON.stringify(l.logs.lines)).to.contain('ServiceAccount token');
      } finally {
        await l.close();
      }
    });

    it('with the active-Job cap on, a watch refused with 401 is answered 500 at once, not after waiting for a count', async function () {
      const l = await startLauncher(strangerConfig(robot), ns.name, { MAX_ACTIVE_JOBS: '5' }, { waitReady: false });
      try {
        const res = await eventually(async () => {
          const r = await postBinary(l.url, { id: 'stranger-2' });
          return r.status === 500 ? r : undefined;
        }, 15_000, 'the refused watch to be seen');
        expect(((await res.json()) as { error: string }).error).to.equal('unauthorized');
      } finally {
        await l.close();
      }
    });
  });

  describe('the active-Job cap', function () {
    it('at MAX_ACTIVE_JOBS: 429 with Retry-After and no Job; a redelivery of an existing Job still 202; a finished Job frees a slot', async function () {
      const l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '2', RETRY_AFTER_SECONDS: '7', JOB_NAME_PREFIX: 'cap-', INSTANCE: 'cap' });
      try {
        expect((await postBinary(l.url, { id: 'cap-1' })).status).to.equal(202);
        expect((await postBinary(l.url, { id: 'cap-2' })).status).to.equal(202);
        const full = await postBinary(l.url, { id: 'cap-3' });
        expect(full.status).to.equal(429);
        expect(full.headers.get('retry-after')).to.equal('7');
        expect(((await full.json()) as { error: string }).error).to.equal('at-capacity');
        const name3 = jobName('cap-', '/test', 'cap-3');
        expect((await batch.listNamespacedJob({ namespace: ns.name, fieldSelector: `metadata.name=${name3}` })).items).to.have.length(0);

        const again = await postBinary(l.url, { id: 'cap-1' });
        expect(again.status).to.equal(202);
        expect(again.headers.get('x-job-status')).to.equal('exists');

        await finishJobPods(ns.kc, ns.name, jobName('cap-', '/test', 'cap-1'), 'Succeeded');
        await eventually(async () => (await postBinary(l.url, { id: 'cap-3' })).status === 202, 30_000, 'a slot once cap-1 succeeded');
      } finally {
        await l.close();
      }
    });

    it('concurrent events cannot overshoot the cap: 20 at once against a cap of 5 create exactly 5 Jobs', async function () {
      const l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '5', JOB_NAME_PREFIX: 'burst-', INSTANCE: 'burst' });
      try {
        const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => postBinary(l.url, { id: `burst-${i}` })));
        const statuses = answers.map((r) => r.status).sort();
        expect(statuses.filter((s) => s === 202)).to.have.length(5);
        expect(statuses.filter((s) => s === 429)).to.have.length(15);
        const jobs = (await batch.listNamespacedJob({ namespace: ns.name })).items.filter((j) => j.metadata!.name!.startsWith('burst-'));
        expect(jobs).to.have.length(5);
      } finally {
        await l.close();
      }
    });

    it('the cap counts only this launcher\'s Jobs: not foreign Jobs, not another instance\'s', async function () {
      const foreign = structuredClone(DEFAULT_TEMPLATE) as V1Job;
      for (let i = 0; i < 3; i++) {
        await batch.createNamespacedJob({ namespace: ns.name, body: { ...foreign, metadata: { name: `foreign-${i}` } } });
      }
      const l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '1', JOB_NAME_PREFIX: 'own-', INSTANCE: 'cap-instance' });
      try {
        expect((await postBinary(l.url, { id: 'own-1' })).status).to.equal(202);
        expect((await postBinary(l.url, { id: 'own-2' })).status).to.equal(429);
      } finally {
        await l.close();
      }
    });
  });

  describe('the API server throttling, failing or silent (through a fault proxy)', function () {
    let proxy: FaultProxy;
    before(async function () {
      proxy = await new FaultProxy(ns.kc).start();
    });
    after(async function () {
      await proxy.stop();
    });
    afterEach(function () {
      proxy.rules = [];
    });

    const launcherThroughProxy = () => startLauncher(proxy.through(robot), ns.name, { MAX_ACTIVE_JOBS: '0', KUBE_TIMEOUT_SECONDS: '1', RETRY_AFTER_SECONDS: '3' });

    it('the API server answers 429 with Retry-After: the launcher answers 429 with the server\'s Retry-After', async function () {
      const l = await launcherThroughProxy();
      try {
        proxy.rules = [{ method: 'POST', path: JOBS, fault: { status: 429, headers: { 'retry-after': '11' } } }];
        const res = await postBinary(l.url, { id: 'throttled-1' });
        expect(res.status).to.equal(429);
        expect(res.headers.get('retry-after')).to.equal('11');
      } finally {
        await l.close();
      }
    });

    it('the API server answers 500 or 503: the launcher answers 503 with Retry-After', async function () {
      const l = await launcherThroughProxy();
      try {
        for (const status of [500, 503]) {
          proxy.rules = [{ method: 'POST', path: JOBS, fault: { status } }];
          const res = await postBinary(l.url, { id: `broken-${status}` });
          expect(res.status, String(status)).to.equal(503);
          expect(res.headers.get('retry-after')).to.equal('3');
        }
      } finally {
        await l.close();
      }
    });

    it('the API server does not answer: after KUBE_TIMEOUT_SECONDS the launcher answers 503 with Retry-After', async function () {
      const l = await launcherThroughProxy();
      try {
        proxy.rules = [{ method: 'POST', path: JOBS, fault: { hang: true } }];
        const t0 = Date.now();
        const res = await postBinary(l.url, { id: 'silent-1' });
        expect(res.status).to.equal(503);
        expect(res.headers.get('retry-after')).to.equal('3');
        expect(Date.now() - t0).to.be.within(900, 5000);
        expect(((await res.json()) as { error: string }).error).to.equal('api-unreachable');
      } finally {
        await l.close();
      }
    });

    it('the API server refuses the Job as invalid because of event data: 400, not a template misconfiguration', async function () {
      const l = await launcherThroughProxy();
      try {
        const causes = [{ reason: 'FieldValueTooLong', message: 'Too long', field: 'metadata.annotations' }];
        proxy.rules = [{ method: 'POST', path: JOBS, fault: { status: 422, body: { kind: 'Status', code: 422, reason: 'Invalid', message: 'annotations too long', details: { causes } } } }];
        const res = await postBinary(l.url, { id: 'invalid-data-1' });
        expect(res.status).to.equal(400);
        expect(((await res.json()) as { error: string; causes: unknown }).causes).to.deep.equal([{ field: 'metadata.annotations', message: 'Too long' }]);
      } finally {
        await l.close();
      }
    });

    it('an API server without streaming lists: the cap counts existing Jobs from a paginated list instead', async function () {
      let refused = 0;
      proxy.rules = [{ method: 'GET', path: JOBS, query: /sendInitialEvents=true/, fault: { status: 422 }, onMatch: () => refused++ }];
      const env = { MAX_ACTIVE_JOBS: '1', INSTANCE: 'no-watchlist', JOB_NAME_PREFIX: 'nwl-' };
      const first = await startLauncher(proxy.through(robot), ns.name, env);
      try {
        expect((await postBinary(first.url, { id: 'nwl-1' })).status).to.equal(202);
      } finally {
        await first.close();
      }
      const second = await startLauncher(proxy.through(robot), ns.name, env);
      try {
        const res = await postBinary(second.url, { id: 'nwl-2' });
        expect(res.status).to.equal(429);
        expect(refused, 'streaming lists refused').to.equal(2);
      } finally {
        await second.close();
      }
    });

    it('an API server without streaming lists and more active Jobs than a page: the paginated list follows continue to the last page', async function () {
      proxy.rules = [{ method: 'GET', path: JOBS, query: /sendInitialEvents=true/, fault: { status: 422 } }];
      const names = ['paged-1', 'paged-2', 'paged-3', 'paged-4', 'paged-5'];
      // suspended: they stay active (no terminal condition) and make no pods
      for (const name of names) await batch.createNamespacedJob({ namespace: ns.name, body: suspendedJob(name, ownerLabels('paged')) });
      const rest = restOf(proxy.through(robot), 10_000);
      const cap = new ActiveCap({ rest, namespace: ns.name, selector: ownerSelector('paged'), max: 100, retryAfterSeconds: 1, log: createLogger('silent'), pageSize: 2 });
      try {
        cap.start();
        await cap.synced;
        expect(cap.active, 'three pages of 2, 2 and 1').to.equal(names.length);
      } finally {
        cap.stop();
        rest.close();
        await batch.deleteCollectionNamespacedJob({ namespace: ns.name, labelSelector: ownerSelector('paged'), propagationPolicy: 'Background' });
      }
    });

    it('once the API server recovers, the same event is created: the failures left nothing behind', async function () {
      const l = await launcherThroughProxy();
      try {
        proxy.rules = [{ method: 'POST', path: JOBS, fault: { status: 503 } }];
        expect((await postBinary(l.url, { id: 'recovers-1' })).status).to.equal(503);
        proxy.rules = [];
        const res = await postBinary(l.url, { id: 'recovers-1' });
        expect(res.status).to.equal(202);
        expect(res.headers.get('x-job-status')).to.equal('created');
      } finally {
        await l.close();
      }
    });
  });

  describe('the Job template', function () {
    it('a template field the API server does not know keeps readiness false and names the field; creates answer 500', async function () {
      const template = structuredClone(DEFAULT_TEMPLATE) as V1Job & { spec: { bogusField?: number } };
      template.spec.bogusField = 3;
      const l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', JOB_NAME_PREFIX: 'unknown-' }, { template, waitReady: false });
      try {
        const res = await fetch(`${l.url}/health/readiness`);
        expect(res.status).to.equal(503);
        const body = (await res.json()) as { failing: Record<string, string> };
        expect(body.failing['template']).to.match(/unknown field "spec.bogusField"/);
        const line = l.logs.find((x) => x['check'] === 'template' && x['level'] === 'error');
        expect(String(line?.['message'])).to.match(/unknown field "spec.bogusField"/);
        const post = await postBinary(l.url, { id: 'unknown-1' });
        expect(post.status).to.equal(500);
        expect(((await post.json()) as { error: string }).error).to.equal('template-rejected');
        expect((await batch.listNamespacedJob({ namespace: ns.name })).items.filter((j) => j.metadata!.name!.startsWith('unknown-'))).to.have.length(0);
      } finally {
        await l.close();
      }
    });

    it('a template the API server finds invalid keeps readiness false and names the field', async function () {
      const template = structuredClone(DEFAULT_TEMPLATE) as V1Job;
      template.spec!.template.spec!.restartPolicy = 'Always';
      template.spec!.template.spec!.containers[0]!.imagePullPolicy = 'Sometimes';
      const l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0' }, { template, waitReady: false });
      try {
        const res = await fetch(`${l.url}/health/readiness`);
        expect(res.status).to.equal(503);
        const failing = ((await res.json()) as { failing: Record<string, string> }).failing['template']!;
        expect(failing).to.contain('spec.template.spec.restartPolicy');
        expect(failing).to.contain('spec.template.spec.containers[0].imagePullPolicy');
      } finally {
        await l.close();
      }
    });

    it('the template shipped in config/job-template.yaml passes the start-up dry run', async function () {
      const [configMap] = parseManifests(readRepoFile('config/job-template.yaml')) as Array<{ data: Record<string, string> }>;
      const template = parseTemplate(configMap!.data['job.yaml']!, 'config/job-template.yaml');
      const l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', JOB_NAME_PREFIX: 'shipped-' }, { template, waitReady: false });
      try {
        const res = await fetch(`${l.url}/health/readiness`);
        expect(res.status, await res.text()).to.equal(200);
      } finally {
        await l.close();
      }
    });

    it('a valid template passes the dry run: readiness turns true and the dry run created nothing', async function () {
      const l = await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', JOB_NAME_PREFIX: 'dry-' });
      try {
        expect((await fetch(`${l.url}/health/readiness`)).status).to.equal(200);
        expect((await batch.listNamespacedJob({ namespace: ns.name })).items.filter((j) => j.metadata!.name!.startsWith('dry-'))).to.have.length(0);
      } finally {
        await l.close();
      }
    });
  });
});
