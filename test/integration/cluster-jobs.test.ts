import { expect } from 'chai';
import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { eventually, useNamespace } from '../helpers/kube.ts';
import { finishJobPods, livePods } from '../helpers/pods.ts';
import { plainJob, waitForJobCondition } from '../helpers/jobs.ts';

describe('control plane: the real job controller and garbage collector', function () {
  const ns = useNamespace('jobs');

  it('marks a Job Complete when its pod is reported Succeeded', async function () {
    await ns.kc.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: ns.name, body: plainJob('succeeds') });
    expect(await finishJobPods(ns.kc, ns.name, 'succeeds', 'Succeeded')).to.equal(1);
    expect(await waitForJobCondition(ns.kc, ns.name, 'succeeds')).to.equal('Complete');
  });

  it('marks a Job Failed once its pods fail past backoffLimit', async function () {
    await ns.kc.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: ns.name, body: plainJob('fails', { backoffLimit: 1 }) });
    // backoffLimit 1 allows two attempts; the job controller creates the second after the first fails.
    await finishJobPods(ns.kc, ns.name, 'fails', 'Failed');
    await finishJobPods(ns.kc, ns.name, 'fails', 'Failed', 60_000);
    expect(await waitForJobCondition(ns.kc, ns.name, 'fails')).to.equal('Failed');
  });

  it('a Background delete removes the Job and, through the garbage collector, its pods', async function () {
    const batch = ns.kc.makeApiClient(BatchV1Api);
    const core = ns.kc.makeApiClient(CoreV1Api);
    await batch.createNamespacedJob({ namespace: ns.name, body: plainJob('doomed') });
    const pods = await eventually(async () => {
      const live = await livePods(ns.kc, ns.name, 'doomed');
      return live.length ? live : undefined;
    });
    const podName = pods[0]!.metadata!.name!;
    await batch.deleteNamespacedJob({ name: 'doomed', namespace: ns.name, propagationPolicy: 'Background' });
    await eventually(
      async () => {
        const list = await core.listNamespacedPod({ namespace: ns.name, fieldSelector: `metadata.name=${podName}` });
        return list.items.length === 0;
      },
      60_000,
      `pod ${podName} to be garbage-collected`,
    );
    const left = await batch.listNamespacedJob({ namespace: ns.name, fieldSelector: 'metadata.name=doomed' });
    expect(left.items).to.have.length(0);
  });
});
