/**
 * Knative's own PingSource adapter (cmd/mtping, knative.dev/eventing v0.49.2) in front of the
 * reaper: config/reaper.yaml's PingSource, on a seconds schedule, sends its events to the reaper
 * process by the reaper's Knative Service name; each run reaps and logs its summary.
 */
import { expect } from 'chai';
import { decodeJwt } from 'jose';
import { DEFAULT_SENDERS } from '../../function/auth/senders.ts';
import { BatchV1Api } from '@kubernetes/client-node';
import { ownerLabels } from '../../function/kube/labels.ts';
import { PING_TYPE } from '../../function/reaper/app.ts';
import { createFinishedJob } from '../helpers/finished.ts';
import { asJobRobot, kubeconfigFile } from '../helpers/launcher.ts';
import { eventually, useNamespace } from '../helpers/kube.ts';
import { createPingSource } from '../helpers/knative-objects.ts';
import { privateControlPlaneOnly, startKnative, type KnativePlane } from '../helpers/knative-plane.ts';
import { spawnReaper, type ReaperProcess } from '../helpers/reaper.ts';

/**
 * Mocha hooks: a namespace, a reaper process acting as job-robot there with `reaperEnv`, and a
 * Knative plane running the PingSource adapter with `features`. The reaper is stopped even when
 * the plane's clean-up fails.
 */
function usePingedReaper(prefix: string, reaperEnv: Record<string, string>, features: Record<string, string> = {}) {
  const ns = useNamespace(prefix);
  const ctx = { ns } as { ns: typeof ns; plane: KnativePlane; reaper: ReaperProcess };
  let kubeconfig: { path: string; remove(): void } | undefined;
  before(async function () {
    // A first run on a machine builds Knative's programs (test/cluster/build.ts).
    this.timeout(900_000);
    privateControlPlaneOnly(this);
    kubeconfig = kubeconfigFile(await asJobRobot(ns.kc, ns.name));
    ctx.reaper = await spawnReaper({ NAMESPACE: ns.name, KUBECONFIG: kubeconfig.path, ...reaperEnv });
    ctx.plane = await startKnative(ns.kc, { components: ['mtping'], features });
  });
  after(async function () {
    try {
      await ctx.plane?.stop();
    } finally {
      await ctx.reaper?.stop();
      kubeconfig?.remove();
    }
  });
  return ctx;
}

describe('Knative PingSource adapter wakes the reaper (real mtping)', function () {
  this.timeout(180_000);
  const run = usePingedReaper('kn-ping', { OIDC_AUTHENTICATION: 'disabled' });

  it("runs the reaper on the PingSource's schedule: each ping is a run, answered 200, its summary logged; the expired Job is deleted", async function () {
    const { plane, reaper, ns } = run;
    // Well past the shipped retention for succeeded Jobs (2 h).
    await createFinishedJob(ns.kc, ns.name, 'expired', 'Complete', new Date(Date.now() - 3 * 3_600_000), ownerLabels());
    const { name, sinkUrl } = await createPingSource(plane, ns.name, { reaperPort: reaper.port, schedule: '*/3 * * * * *' });
    const host = new URL(sinkUrl).host;
    const pings = () => plane.names.exchanges.filter((e) => e.host === host);

    await eventually(async () => pings().filter((p) => p.status === 200).length >= 2, 60_000, 'two pings answered').catch((err: Error) => {
      err.message += `\n${plane.tails()}\n--- reaper ---\n${reaper.stdout().slice(-4000)}`;
      throw err;
    });
    const [first, second] = pings();
    expect(first!.headers['ce-type']).to.equal(PING_TYPE);
    expect(first!.headers['ce-source']).to.equal(`/apis/v1/namespaces/${ns.name}/pingsources/${name}`);
    expect(first!.headers['content-type']).to.equal('application/json');
    // Every 3 s, each send delayed by up to 0.5 s at random (the adapter spreads its load).
    expect(second!.at - first!.at).to.be.within(2_400, 3_700);

    const runs = await eventually(async () => {
      const lines = reaper.lines().filter((l) => String(l['message']).startsWith('reaper run:'));
      return lines.length >= 2 ? lines : undefined;
    }, 10_000, 'two runs logged');
    expect(runs[0]).to.deep.include({ level: 'info', message: 'reaper run: deleted 1 Job(s)', deleted: 1, eventId: first!.headers['ce-id'] });
    expect(runs[1]).to.deep.include({ message: 'reaper run: deleted 0 Job(s)', deleted: 0, eventId: second!.headers['ce-id'] });
  });
});

describe('Knative PingSource adapter with authentication-oidc: the reaper verifies the PingSource\'s token (real mtping)', function () {
  this.timeout(180_000);
  // As shipped: authentication on, the audience config/reaper.yaml's PingSource names (the Service's K_SERVICE).
  const run = usePingedReaper('kn-ping-oidc', { OIDC_AUTHENTICATION: 'enabled', K_SERVICE: 'job-robot-reaper' }, { 'authentication-oidc': 'enabled' });

  it('each ping carries the PingSource identity\'s token for the reaper\'s audience, and runs the reaper; without the token the reaper refuses', async function () {
    const { plane, reaper, ns } = run;
    const { sinkUrl } = await createPingSource(plane, ns.name, { reaperPort: reaper.port, schedule: '*/3 * * * * *', oidc: true });
    const host = new URL(sinkUrl).host;
    const ping = await eventually(async () => plane.names.exchanges.find((e) => e.host === host && e.status !== 0), 60_000, 'a ping answered').catch((err: Error) => {
      err.message += `\n${plane.tails()}\n--- reaper ---\n${reaper.stdout().slice(-4000)}`;
      throw err;
    });
    expect(ping.status).to.equal(200);
    const claims = decodeJwt(String(ping.headers['authorization'] ?? '').replace(/^Bearer /, ''));
    expect(claims.sub).to.equal(`system:serviceaccount:${ns.name}:${DEFAULT_SENDERS.reaper[0]}`);
    expect(claims.aud).to.deep.equal(['job-robot-reaper']);
    await eventually(async () => reaper.lines().some((l) => String(l['message']).startsWith('reaper run:')), 10_000, 'a run logged');

    const unsigned = await fetch(`http://127.0.0.1:${reaper.port}/`, {
      method: 'POST',
      headers: { 'ce-specversion': '1.0', 'ce-id': 'no-token', 'ce-source': String(ping.headers['ce-source']), 'ce-type': PING_TYPE, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(unsigned.status).to.equal(401);
    // The reaper's 200 with a JSON summary counts as delivered: the adapter logs no failed send.
    expect(plane.mtping!.lines().filter((l) => String(l['msg']).startsWith('failed to send cloudevent'))).to.deep.equal([]);
    const left = await ns.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns.name });
    expect(left.items.map((j) => j.metadata!.name)).to.not.include('expired');
  });
});
