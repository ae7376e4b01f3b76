/**
 * Knative Eventing's own JobSink receiver (cmd/jobsink, knative.dev/eventing v0.49.2) works against
 * the test control plane, so that the JobSink benchmark (test/bench/jobsink.ts) measures Jobs, not
 * failures: one event makes one Job from the JobSink's template (and one Secret holding the event),
 * a repeat of the same event makes nothing new, and a path naming no JobSink is refused. JobSink
 * reaches the API server through a proxy that records the calls it makes in the test namespace.
 */
import { expect } from 'chai';
import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { DEFAULT_TEMPLATE } from '../../function/kube/job-template.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { useNamespace } from '../helpers/kube.ts';
import { makePki, type Pki } from '../helpers/pki.ts';
import { countJobSinkObjects, JOBSINK_NAME_LABEL, startJobSink, type RunningJobSink } from '../helpers/jobsink.ts';
import { privateControlPlaneOnly } from '../helpers/knative-plane.ts';

function post(url: string, id: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': '/test', 'ce-type': 'dev.job-robot.queue.item', 'content-type': 'application/json' },
    body: JSON.stringify({ id }),
  });
}

describe("Knative's JobSink receiver against the test control plane (real cmd/jobsink)", function () {
  this.timeout(120_000);
  const ns = useNamespace('jobsink');
  let sink: RunningJobSink;
  let proxy: FaultProxy;
  let pki: Pki;
  /** JobSink's calls under the test namespace: `<method> <resource>` (the per-event work; its informers watch elsewhere). */
  const calls: string[] = [];

  before(async function () {
    // A first run on a machine builds JobSink (test/cluster/build.ts jobsink).
    this.timeout(900_000);
    privateControlPlaneOnly(this);
    const template = structuredClone(DEFAULT_TEMPLATE);
    template.spec!.suspend = true;
    // Over TLS: client-go sends its token only there.
    pki = makePki('jobsink-proxy');
    proxy = await new FaultProxy(ns.kc, pki).start();
    proxy.rules = [
      {
        path: new RegExp(`^/apis?/(?:[^/]+/)?v1/namespaces/${ns.name}/`),
        fault: { delayMs: 0 },
        onMatch: (req) => void calls.push(`${req.method} ${req.url!.split('?')[0]!.split('/').slice(-1)[0]}`),
      },
    ];
    sink = await startJobSink(ns.kc, { namespace: ns.name, template, name: 'pi', apiServer: (kc) => proxy.through(kc) });
  });
  after(async function () {
    await sink?.stop();
    await proxy?.stop();
    pki?.remove();
  });

  it("turns one event into one Job from the JobSink's template, plus one Secret holding the event, in three API calls; a repeat adds nothing", async function () {
    calls.length = 0;
    const res = await post(sink.url, 'one');
    expect(res.status, sink.log().slice(-3000)).to.equal(202);
    expect(res.headers.get('location')).to.equal(`/namespaces/${ns.name}/name/pi/sources//test/ids/one`);

    const jobs = (await ns.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns.name, labelSelector: `${JOBSINK_NAME_LABEL}=pi` })).items;
    expect(jobs).to.have.length(1);
    const job = jobs[0]!;
    expect(job.spec!.suspend).to.equal(true);
    const container = job.spec!.template.spec!.containers[0]!;
    expect(container.image).to.equal(DEFAULT_TEMPLATE.spec!.template.spec!.containers[0]!.image);
    expect(container.env).to.deep.include({ name: 'K_EVENT_PATH', value: '/etc/jobsink-event' });
    expect(job.metadata!.ownerReferences?.[0]).to.include({ kind: 'jobsinks', name: 'pi' });

    const secret = await ns.kc.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace: ns.name, name: job.metadata!.name! });
    const event = JSON.parse(Buffer.from(secret.data!['event']!, 'base64').toString('utf8')) as Record<string, unknown>;
    expect(event).to.include({ id: 'one', source: '/test', type: 'dev.job-robot.queue.item' });
    expect(secret.metadata!.ownerReferences?.[0]).to.include({ kind: 'Job', name: job.metadata!.name, uid: job.metadata!.uid });

    // Its path per new event: look for the Job by label, create the Job, create the Secret.
    expect(calls).to.deep.equal(['GET jobs', 'POST jobs', 'POST secrets']);

    calls.length = 0;
    const again = await post(sink.url, 'one');
    expect(again.status).to.equal(202);
    expect(calls).to.deep.equal(['GET jobs']);
    expect(await countJobSinkObjects(ns.kc, ns.name, 'pi')).to.deep.equal({ jobs: 1, secrets: 1 });
  });

  it('refuses a path that names no JobSink (400) and creates nothing', async function () {
    const res = await post(sink.url.replace(/\/pi$/, '/nobody'), 'two');
    expect(res.status).to.equal(400);
    expect(await countJobSinkObjects(ns.kc, ns.name, 'pi')).to.deep.equal({ jobs: 1, secrets: 1 });
    expect(sink.running()).to.equal(true);
  });
});
