/**
 * The launcher behind Knative Serving's real queue-proxy (cmd/queue, knative.dev/serving v0.49.1),
 * both as plain processes with the environment Knative gives a revision's containers
 * (test/helpers/queue-proxy.ts), the launcher acting as the job-robot ServiceAccount against the
 * test control plane through a fault proxy that can slow its Job creates. The test plays the
 * kubelet: it probes the queue-proxy's readiness as the kubelet does, and terminates the pod as the
 * kubelet does (SIGTERM to the queue-proxy and the launcher's pre-stop hook together, SIGTERM to
 * the launcher when that hook returns).
 */
import { expect } from 'chai';
import { BatchV1Api, type KubeConfig } from '@kubernetes/client-node';
import { freePort } from '../cluster/ports.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { useNamespace } from '../helpers/kube.ts';
import { asJobRobot, envOf, kubeconfigFile, postBinary, spawnLauncher, type ChildLauncher } from '../helpers/launcher.ts';
import { launcherRevision, lockQueueProxyPorts, spawnQueueProxy, untilReady, userContainerEnv, type QueueProxy, type Revision } from '../helpers/queue-proxy.ts';

interface Pod {
  qp: QueueProxy;
  launcher: ChildLauncher;
}

describe('launcher behind the real Knative queue-proxy', function () {
  this.timeout(180_000);
  const ns = useNamespace('qp');
  let release: () => void;
  let proxy: FaultProxy;
  let kubeconfig: { path: string; remove(): void };
  let robot: KubeConfig;
  const pods: Pod[] = [];

  /** Job creates (not the start-up dry run) the launcher sends, counted while in flight. */
  const creates = { inFlight: 0, max: 0, total: 0 };
  function slowCreates(delayMs: number): void {
    creates.inFlight = creates.max = creates.total = 0;
    proxy.rules = [
      {
        method: 'POST',
        path: new RegExp(`^/apis/batch/v1/namespaces/${ns.name}/jobs$`),
        query: /^(?![\s\S]*dryRun)/,
        fault: { delayMs },
        onMatch: () => {
          creates.total++;
          creates.max = Math.max(creates.max, ++creates.inFlight);
        },
        onDone: () => void creates.inFlight--,
      },
    ];
  }

  /** The revision's two containers, started together as the kubelet starts a pod. */
  async function startPod(rev: Revision): Promise<Pod> {
    const userPort = await freePort();
    const qp = await spawnQueueProxy(rev, userPort);
    const launcher = await spawnLauncher(
      { ...userContainerEnv(rev, userPort), NAMESPACE: ns.name, KUBECONFIG: kubeconfig.path, LOG_LEVEL: 'info', OIDC_AUTHENTICATION: 'disabled' },
      { waitListening: false },
    );
    const pod = { qp, launcher };
    pods.push(pod);
    return pod;
  }

  async function jobIds(): Promise<string[]> {
    const jobs = await robot.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns.name });
    return jobs.items.map((j) => envOf(j)['CE_ID']!).sort();
  }

  before(async function () {
    // A first run on a machine builds the queue-proxy (test/cluster/build.ts serving).
    this.timeout(900_000);
    release = await lockQueueProxyPorts();
    robot = await asJobRobot(ns.kc, ns.name);
    proxy = await new FaultProxy(ns.kc).start();
    kubeconfig = kubeconfigFile(proxy.through(robot));
  });
  afterEach(async function () {
    for (const { qp, launcher } of pods.splice(0)) {
      await qp.kill();
      await launcher.stop();
    }
    if (proxy) proxy.rules = [];
  });
  after(async function () {
    await proxy?.stop();
    kubeconfig?.remove();
    release?.();
  });

  it("reports ready only once the launcher's own readiness passes, then carries events to Jobs (202)", async function () {
    // Hold the launcher's first start-up check (SelfSubjectAccessReview) for 2 s: it listens, not ready.
    proxy.rules = [{ method: 'POST', path: /^\/apis\/authorization\.k8s\.io\/v1\/selfsubjectaccessreviews$/, fault: { delayMs: 2_000 } }];
    const rev = launcherRevision(ns.name);
    const { qp, launcher } = await startPod(rev);
    const samples: Array<{ proxy: number; launcher: number }> = [];
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      // The queue-proxy first, then the launcher: a ready proxy implies the launcher is ready by then.
      const proxied = await qp.probe();
      const own = await fetch(`http://127.0.0.1:${qp.userPort}/health/readiness`).then((r) => r.status, () => 0);
      samples.push({ proxy: proxied, launcher: own });
      if (proxied === 200) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(samples.at(-1)!.proxy, `never ready:\n${qp.log().slice(-3000)}\n${launcher.stderr()}${launcher.stdout().slice(-3000)}`).to.equal(200);
    // Seen: the launcher listening but not ready, and the queue-proxy refusing readiness meanwhile.
    expect(samples.some((s) => s.launcher === 503 && s.proxy === 503)).to.equal(true);
    expect(samples.filter((s) => s.proxy === 200).every((s) => s.launcher === 200)).to.equal(true);

    for (const id of ['qp-1', 'qp-2', 'qp-3']) {
      const res = await postBinary(qp.url, { id, data: JSON.stringify({ id }) });
      expect(res.status, await res.text()).to.equal(202);
    }
    expect(await jobIds()).to.deep.equal(['qp-1', 'qp-2', 'qp-3']);
  });

  it('honours containerConcurrency 1: with Job creates slowed, one event at a time reaches the launcher', async function () {
    const { qp, launcher } = await startPod(launcherRevision(ns.name, { containerConcurrency: 1 }));
    await untilReady(qp, 30_000, 20);
    slowCreates(600);

    const through = await Promise.all(['cc-1', 'cc-2', 'cc-3', 'cc-4'].map((id) => postBinary(qp.url, { id, data: '{}' }).then((r) => r.status)));
    expect(through).to.deep.equal([202, 202, 202, 202]);
    expect(creates.total).to.equal(4);
    expect(creates.max, 'Job creates in flight at once, behind the queue-proxy').to.equal(1);

    // The same burst straight to the launcher overlaps: the count above could have seen it.
    slowCreates(600);
    const direct = await Promise.all(['dc-1', 'dc-2', 'dc-3', 'dc-4'].map((id) => postBinary(`http://127.0.0.1:${qp.userPort}`, { id, data: '{}' }).then((r) => r.status)));
    expect(direct).to.deep.equal([202, 202, 202, 202]);
    expect(creates.max, 'Job creates in flight at once, straight to the launcher').to.be.greaterThan(1);
    expect(launcher.child.exitCode).to.equal(null);
  });

  it('on SIGTERM keeps serving through the drain: in-flight and new events finish with 202, then both exit 0', async function () {
    const { qp, launcher } = await startPod(launcherRevision(ns.name));
    await untilReady(qp, 30_000, 20);
    const before = await jobIds();
    slowCreates(1_500);
    const inFlight = ['drain-1', 'drain-2', 'drain-3', 'drain-4', 'drain-5'].map((id) => postBinary(qp.url, { id, data: '{}' }).then((r) => r.status));
    for (const deadline = Date.now() + 10_000; creates.total < 5 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    expect(creates.inFlight, 'events in flight at the API server when the pod is deleted').to.equal(5);

    // The kubelet: SIGTERM to the queue-proxy, and the launcher's pre-stop hook, at once.
    const t0 = performance.now();
    qp.terminate();
    const preStop = qp.preStop().then((status) => ({ status, ms: performance.now() - t0 }));
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await qp.probe(), 'readiness while draining').to.equal(503);
    const late = await postBinary(qp.url, { id: 'drain-late', data: '{}' });
    expect(late.status, 'an event arriving during the drain').to.equal(202);
    expect(await Promise.all(inFlight)).to.deep.equal([202, 202, 202, 202, 202]);

    // The hook returns once the queue-proxy has been quiet for its drain period (30 s); only then
    // does the kubelet send the launcher SIGTERM.
    const hook = await preStop;
    expect(hook.status).to.equal(200);
    expect(hook.ms).to.be.greaterThan(29_000);
    launcher.child.kill('SIGTERM');
    expect(await launcher.exited).to.deep.equal({ code: 0, signal: null });
    expect(await qp.exited).to.deep.equal({ code: 0, signal: null });
    expect((await jobIds()).filter((id) => !before.includes(id))).to.deep.equal(['drain-1', 'drain-2', 'drain-3', 'drain-4', 'drain-5', 'drain-late']);
  });
});
