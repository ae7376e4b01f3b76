/**
 * The reaper as the container runs it: `node function/cli.ts reaper`, a child process acting as a
 * ServiceAccount through a kubeconfig file.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { EVENT_ID_ANNOTATION, EVENT_SOURCE_ANNOTATION, ownerLabels } from '../../function/kube/labels.ts';
import { PING_TYPE } from '../../function/reaper/app.ts';
import type { ReapSummary } from '../../function/reaper/summary.ts';
import { freePort } from '../cluster/ports.ts';
import { createFinishedJob } from '../helpers/finished.ts';
import { applyManifests, eventually, serviceAccountConfig, useNamespace } from '../helpers/kube.ts';
import { ROOT, readRepoFile } from '../helpers/paths.ts';

interface Child {
  url: string;
  process: ChildProcess;
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

describe('reaper process: node function/cli.ts reaper', function () {
  this.timeout(60_000);
  const ns = useNamespace('reap-proc');
  let dir: string;
  const children: Child[] = [];

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'job-robot-reaper-proc-'));
    await applyManifests(ns.kc, readRepoFile('config/rbac.yaml'), ns.name);
    await ns.kc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'unbound' } } });
  });
  afterEach(function () {
    for (const c of children.splice(0)) if (c.process.exitCode === null) c.process.kill('SIGKILL');
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  async function kubeconfigFor(sa: string): Promise<string> {
    const kc: KubeConfig = await serviceAccountConfig(ns.kc, ns.name, sa);
    const path = join(dir, `${sa}.kubeconfig`);
    writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
    return path;
  }

  async function spawnReaper(env: Record<string, string>): Promise<Child> {
    const port = await freePort();
    const p = spawn(process.execPath, [join(ROOT, 'function/cli.ts'), 'reaper'], {
      env: { ...process.env, NAMESPACE: ns.name, PORT: String(port), LOG_LEVEL: 'debug', OIDC_AUTHENTICATION: 'disabled', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const child: Child = {
      url: `http://127.0.0.1:${port}`,
      process: p,
      exited: new Promise((resolve) => p.on('exit', (code) => resolve(code))),
      stdout: () => out,
      stderr: () => err,
    };
    children.push(child);
    return child;
  }

  const readiness = async (c: Child) => {
    const res = await fetch(`${c.url}/health/readiness`);
    return { status: res.status, body: (await res.json()) as { ready: boolean; failing: Record<string, string> } };
  };
  const ping = (c: Child, id: string) =>
    fetch(`${c.url}/`, {
      method: 'POST',
      headers: { 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': '/ping', 'ce-type': PING_TYPE, 'content-type': 'application/json' },
      body: '{"trigger":"schedule"}',
    });
  const logLines = (c: Child) =>
    c
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  for (const [name, env, pattern] of [
    ['REAPER_FAILED_MAX_AGE', { REAPER_FAILED_MAX_AGE: 'a day' }, /REAPER_FAILED_MAX_AGE: must be a duration/],
    ['REAPER_CONCURRENCY', { REAPER_CONCURRENCY: '0' }, /REAPER_CONCURRENCY/],
    ['KUBECONFIG', { KUBECONFIG: '/nonexistent/kubeconfig' }, /KUBECONFIG: cannot load \/nonexistent\/kubeconfig/],
  ] as const) {
    it(`bad ${name}: exit 78 with one line naming it, no stack trace`, async function () {
      const c = await spawnReaper({ KUBECONFIG: await kubeconfigFor('job-robot'), ...env });
      expect(await c.exited).to.equal(78);
      expect(c.stderr()).to.match(pattern);
      expect(c.stderr()).to.not.match(/\n\s+at /);
    });
  }

  it('as job-robot: ready after the permission check, reaps on a ping, answers metrics, exits 0 on SIGTERM', async function () {
    // Well past the default retention (2 h for succeeded Jobs).
    await createFinishedJob(ns.kc, ns.name, 'old', 'Complete', new Date(Date.now() - 3 * 3_600_000), ownerLabels());
    const c = await spawnReaper({ KUBECONFIG: await kubeconfigFor('job-robot') });
    await eventually(async () => (await readiness(c)).status === 200, 20_000, 'readiness');
    const res = await ping(c, 'tick');
    expect(res.status).to.equal(200);
    expect((await res.json()) as ReapSummary).to.deep.include({ namespace: ns.name, deleted: 1, errors: 0 });
    expect(await (await fetch(`${c.url}/metrics`)).text()).to.match(/job_robot_reaper_runs_total\{outcome="ok",dry_run="false",component="reaper"\} 1/);
    // The answer can arrive before the run's log line has come through the pipe.
    const run = await eventually(async () => logLines(c).find((l) => l['message'] === 'reaper run: deleted 1 Job(s)'), 5_000, 'the run logged');
    expect(run, c.stdout()).to.deep.include({ level: 'info', eventId: 'tick', deleted: 1 });
    c.process.kill('SIGTERM');
    expect(await c.exited).to.equal(0);
    expect(logLines(c).some((l) => l['message'] === 'stopped')).to.equal(true);
  });

  it('a run logs at info only when it did something or found a problem: nothing past retention is debug, a Job held back because Redis cannot answer is info', async function () {
    const source = '/reaper-process-test';
    // Redis on a port nobody listens on: whether a queue item is in flight cannot be told.
    const c = await spawnReaper({ KUBECONFIG: await kubeconfigFor('job-robot'), REDIS_URL: `redis://127.0.0.1:${await freePort()}`, EVENT_SOURCE: source });
    await eventually(async () => (await readiness(c)).status === 200, 20_000, 'readiness');
    const runLine = (eventId: string) =>
      eventually(async () => logLines(c).find((l) => l['eventId'] === eventId && String(l['message']).startsWith('reaper run:')), 5_000, `run ${eventId} logged`);

    await createFinishedJob(ns.kc, ns.name, 'young', 'Complete', new Date(), ownerLabels());
    expect(((await (await ping(c, 'quiet')).json()) as ReapSummary).kept['within-max-age']).to.be.at.least(1);
    expect(await runLine('quiet'), c.stdout()).to.deep.include({ level: 'debug', message: 'reaper run: deleted 0 Job(s)', deleted: 0 });

    await createFinishedJob(ns.kc, ns.name, 'held', 'Complete', new Date(Date.now() - 3 * 3_600_000), ownerLabels(), undefined, {
      [EVENT_SOURCE_ANNOTATION]: source,
      [EVENT_ID_ANNOTATION]: 'item-1',
    });
    // Its result cannot be read either: the results backstop keeps it before the in-flight check is asked.
    expect(((await (await ping(c, 'held')).json()) as ReapSummary).kept['result-unrecorded']).to.equal(1);
    expect(await runLine('held'), c.stdout()).to.deep.include({ level: 'info', message: 'reaper run: deleted 0 Job(s)', deleted: 0 });
  });

  it('without the RoleBinding: not ready, the readiness answer and the log carry the fix', async function () {
    const c = await spawnReaper({ KUBECONFIG: await kubeconfigFor('unbound') });
    const fix = `grant list jobs.batch, delete jobs.batch in namespace ${ns.name}: kubectl apply -n ${ns.name} -f config/rbac.yaml`;
    const r = await eventually(async () => {
      const x = await readiness(c);
      return x.body.failing['permissions'] === fix ? x : undefined;
    }, 20_000, 'the permission check to fail');
    expect(r.status).to.equal(503);
    const logged = logLines(c).find((l) => l['message'] === 'the reaper lacks permissions it needs');
    expect(logged, c.stdout()).to.deep.include({ level: 'error', fix });
  });
});
