/**
 * Scale-out: several whole job-robots (bridge, launcher and reaper as processes, each as the
 * job-robot ServiceAccount under config/rbac.yaml's Role) side by side in one namespace, told apart
 * by INSTANCE; and one job-robot per namespace across several namespaces, with nothing granted
 * cluster-wide.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { BatchV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { checkAccess } from '../../function/kube/access.ts';
import { EVENT_SOURCE_ANNOTATION, INSTANCE_LABEL, MANAGED_BY_LABEL, ownerLabels } from '../../function/kube/labels.ts';
import { JOB_ROBOT_PERMISSIONS } from '../../function/kube/permissions.ts';
import type { ReapSummary } from '../../function/reaper/summary.ts';
import { createFinishedJob } from '../helpers/finished.ts';
import { colourImage, colouredTemplate, clusterGrantsTo, flattenRules, jobLooks, markerOf, ownRules, shippedNamespace } from '../helpers/instances.ts';
import { JobLedger } from '../helpers/job-ledger.ts';
import { plainJob, terminalCondition, waitForJobCondition } from '../helpers/jobs.ts';
import { adminConfig, deleteNamespace, eventually, parseManifests, serviceAccountConfig, useNamespace } from '../helpers/kube.ts';
import { asJobRobot, postBinary, startLauncher, type TestLauncher } from '../helpers/launcher.ts';
import { readRepoFile } from '../helpers/paths.ts';
import { Component, pingReaper, startPipeline, type Pipeline, type PipelineOptions } from '../helpers/pipeline.ts';
import { finishJobPods } from '../helpers/pods.ts';
import { uniquePrefix } from '../helpers/redis.ts';
import { restOf } from '../../function/kube/client.ts';

const redisUrl = (): string => process.env['JOB_ROBOT_TEST_REDIS_URL']!;
const names = (jobs: V1Job[]): string[] => jobs.map((j) => j.metadata!.name!).sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves to the HTTP status of a rejected Kubernetes call (0 when it succeeded). */
async function refusal(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

/** Starts every pipeline; if one fails, stops the others and throws. */
async function startAll(options: PipelineOptions[]): Promise<Pipeline[]> {
  const settled = await Promise.allSettled(options.map((o) => startPipeline(o)));
  const failed = settled.find((s) => s.status === 'rejected');
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<Pipeline>).value);
  await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
  throw failed.reason;
}

describe('several job-robots in one namespace: each counts, answers for and reaps only its own Jobs', function () {
  this.timeout(90_000);
  const ns = useNamespace('many');
  const tag = randomBytes(3).toString('hex');
  let redis: Redis;
  let batch: BatchV1Api;

  /** One whole job-robot: `plain` runs without INSTANCE, the way a lone job-robot does. */
  interface Robot {
    colour: 'blue' | 'green' | 'plain';
    instance: string | undefined;
    cap: number;
    queue: string;
    pipe: Pipeline;
    markers: string[];
  }
  const robots: Robot[] = [];
  const robot = (colour: Robot['colour']): Robot => robots.find((r) => r.colour === colour)!;
  /** The instance's Jobs, selected here by the labels themselves, not by the code under test. */
  const selectorOf = (r: Robot): string => `${MANAGED_BY_LABEL}=job-robot,${r.instance ? `${INSTANCE_LABEL}=${r.instance}` : `!${INSTANCE_LABEL}`}`;

  before(async function () {
    redis = new Redis(redisUrl());
    batch = ns.kc.makeApiClient(BatchV1Api);
    const specs = [
      { colour: 'blue', instance: 'blue', cap: 2 },
      { colour: 'green', instance: 'green', cap: 6 },
      { colour: 'plain', instance: undefined, cap: 1 },
    ] as const;
    const queues = specs.map((s) => `${uniquePrefix(`many-${s.colour}`)}queue`);
    const pipes = await startAll(
      specs.map((s, i) => ({
        admin: ns.kc,
        namespace: ns.name,
        redisUrl: redisUrl(),
        queue: queues[i]!,
        template: colouredTemplate(s.colour),
        launcherEnv: { MAX_ACTIVE_JOBS: String(s.cap), RETRY_AFTER_SECONDS: '1', ...(s.instance ? { INSTANCE: s.instance } : {}) },
        bridgeEnv: { BACKOFF_MIN_MS: '50', BACKOFF_MAX_MS: '1000' },
        // Retention 1 s for both classes, nothing kept: every finished Job is past retention.
        reaperEnv: { REAPER_SUCCEEDED_MAX_AGE: '1s', REAPER_FAILED_MAX_AGE: '1s', REAPER_FAILED_KEEP: '0', ...(s.instance ? { INSTANCE: s.instance } : {}) },
        // The test decides which pods finish, and when each reaper runs.
        kubelet: false as const,
        pingEveryMs: 3_600_000,
      })),
    );
    specs.forEach((s, i) => robots.push({ ...s, queue: queues[i]!, pipe: pipes[i]!, markers: [] }));
  });
  after(async function () {
    await Promise.all(robots.map((r) => r.pipe.stop().catch(() => undefined)));
    await Component.killAll();
    redis?.disconnect();
  });

  const push = async (r: Robot, n: number): Promise<string[]> => {
    const markers = Array.from({ length: n }, (_, i) => `${tag}-${r.colour}-${r.markers.length + i}`);
    r.markers.push(...markers);
    await redis.lpush(r.queue, ...markers.map((marker) => JSON.stringify({ marker })));
    return markers;
  };
  const jobsOf = async (r: Robot): Promise<V1Job[]> => (await batch.listNamespacedJob({ namespace: ns.name, labelSelector: selectorOf(r) })).items;
  const allJobs = async (): Promise<V1Job[]> => (await batch.listNamespacedJob({ namespace: ns.name })).items;
  const waitJobs = (r: Robot, n: number) => eventually(async () => (await jobsOf(r)).length === n, 30_000, `${n} Jobs of ${r.colour}`);
  const rejected = (r: Robot) => r.pipe.launcher.metric('job_robot_launcher_rejections_total', { reason: 'at-capacity' });
  /** A fresh event POSTed straight to the instance's launcher: the cap's own answer. */
  const probe = async (r: Robot) => {
    const res = await postBinary(r.pipe.launcher.url, { id: `probe-${tag}-${randomBytes(3).toString('hex')}`, data: '{}' });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error: string; message: string } };
  };

  it("blue reaches its cap of 2, then green creates all 6 of its Jobs beside blue's: green's cap does not count blue's Jobs", async function () {
    await push(robot('blue'), 2);
    await waitJobs(robot('blue'), 2);
    await push(robot('green'), 6);
    await waitJobs(robot('green'), 6);
    await push(robot('plain'), 1);
    await waitJobs(robot('plain'), 1);
    const jobs = await allJobs();
    expect(jobs, 'Jobs in the namespace').to.have.length(9);
    expect(jobs.filter(terminalCondition), 'finished Jobs').to.deep.equal([]);
    for (const r of robots) expect(await r.pipe.launcher.metric('job_robot_launcher_active_jobs'), `${r.colour}'s active-Job gauge`).to.equal(r.cap);
  });

  it("each item became exactly one Job, built from its own instance's template and carrying its own instance label", async function () {
    const jobs = await allJobs();
    const byMarker = new Map<string, V1Job[]>();
    for (const j of jobs) byMarker.set(markerOf(j) ?? '(none)', [...(byMarker.get(markerOf(j) ?? '(none)') ?? []), j]);
    const pushed = robots.flatMap((r) => r.markers).sort();
    expect([...byMarker.keys()].sort(), 'items with a Job').to.deep.equal(pushed);
    for (const r of robots) {
      for (const m of r.markers) {
        const [job, ...more] = byMarker.get(m)!;
        expect(more, `Jobs of item ${m}`).to.have.length(0);
        expect(jobLooks(job!), `Job of ${m}`).to.deep.equal({ instance: r.instance, colour: r.colour, image: colourImage(r.colour), args: [`--colour=${r.colour}`] });
        expect(job!.metadata!.annotations![EVENT_SOURCE_ANNOTATION], `source of ${m}`).to.equal(r.pipe.source);
      }
    }
  });

  it("at its cap each launcher answers 429 counting only its own active Jobs, while the namespace holds 9; GET /jobs/<name> knows only its own", async function () {
    for (const r of robots) {
      const answer = await probe(r);
      expect(answer.status, `${r.colour} at its cap`).to.equal(429);
      expect(answer.retryAfter).to.equal('1');
      expect(answer.body.error).to.equal('at-capacity');
      expect(answer.body.message, r.colour).to.equal(`${r.cap} active Jobs reach the cap MAX_ACTIVE_JOBS=${r.cap}; retry later`);
    }
    expect(await allJobs(), 'no Job from a refused event').to.have.length(9);
    const greenJob = names(await jobsOf(robot('green')))[0]!;
    for (const r of robots) {
      const res = await fetch(`${r.pipe.launcher.url}/jobs/${greenJob}`, { headers: { accept: 'application/json' } });
      expect(res.status, `${r.colour}'s launcher asked for green's Job`).to.equal(r.colour === 'green' ? 200 : 404);
    }
  });

  it('blue finishing one Job frees a slot for blue only: its waiting item gets its Job; green and the unnamed one still refuse', async function () {
    const blue = robot('blue');
    const before = await rejected(blue);
    const [waiting] = await push(blue, 1);
    // The bridge's delivery meets the cap, and the item stays in Redis.
    await eventually(async () => (await rejected(blue)) > before, 20_000, "blue's launcher to refuse the waiting item");
    await sleep(500);
    expect(names(await jobsOf(blue)), "blue's Jobs while at its cap").to.have.length(2);
    expect((await redis.llen(blue.queue)) + (await redis.hlen(blue.pipe.keys.items)), 'blue items without a Job').to.equal(1);

    const [first] = names(await jobsOf(blue));
    await finishJobPods(ns.kc, ns.name, first!, 'Succeeded');
    expect(await waitForJobCondition(ns.kc, ns.name, first!)).to.equal('Complete');
    await eventually(async () => (await jobsOf(blue)).some((j) => markerOf(j) === waiting), 20_000, "the waiting blue item's Job");
    expect(await jobsOf(blue), "blue's Jobs").to.have.length(3);
    expect((await probe(blue)).status, 'blue, at its cap again').to.equal(429);
    for (const r of [robot('green'), robot('plain')]) {
      const answer = await probe(r);
      expect(answer.status, r.colour).to.equal(429);
      expect(answer.body.message).to.match(new RegExp(`^${r.cap} active Jobs`));
    }
  });

  it("each reaper run deletes its own finished Jobs only: never another instance's, though finished and past retention; the unnamed one touches no named Job", async function () {
    // Per instance: one Job the job controller marked Complete, one Failed two hours ago.
    for (const r of [robot('green'), robot('plain')]) {
      const [name] = names((await jobsOf(r)).filter((j) => !terminalCondition(j)));
      await finishJobPods(ns.kc, ns.name, name!, 'Succeeded');
      expect(await waitForJobCondition(ns.kc, ns.name, name!)).to.equal('Complete');
    }
    for (const r of robots) await createFinishedJob(ns.kc, ns.name, `${r.colour}-failed-${tag}`, 'Failed', new Date(Date.now() - 2 * 3_600_000), ownerLabels(r.instance));
    await sleep(2000); // past the 1 s retention
    const finished = async (r: Robot) => names((await jobsOf(r)).filter(terminalCondition));
    const expected = new Map<Robot, string[]>();
    for (const r of robots) {
      expected.set(r, await finished(r));
      expect(expected.get(r), `${r.colour}'s finished Jobs`).to.have.length(2);
    }

    for (const r of [robot('plain'), robot('blue'), robot('green')]) {
      const before = new Map(await Promise.all(robots.map(async (o) => [o, names(await jobsOf(o))] as const)));
      const { status, summary } = await pingReaper(r.pipe.reaper!.url, `reap-${r.colour}`, ns.name);
      expect(status, `${r.colour}'s reaper`).to.equal(200);
      const s = summary as unknown as ReapSummary;
      expect({ examined: s.examined, deleted: s.deleted, errors: s.errors }, `${r.colour}'s run`).to.deep.equal({ examined: before.get(r)!.length, deleted: 2, errors: 0 });
      const gone = expected.get(r)!;
      await eventually(async () => (await jobsOf(r)).every((j) => !gone.includes(j.metadata!.name!)), 10_000, `${r.colour}'s finished Jobs to go`);
      expect(names(await jobsOf(r)), `${r.colour}'s Jobs left`).to.deep.equal(before.get(r)!.filter((n) => !gone.includes(n)));
      for (const o of robots.filter((o) => o !== r)) expect(names(await jobsOf(o)), `${o.colour}'s Jobs after ${r.colour}'s run`).to.deep.equal(before.get(o));
      expect(s.selector).to.equal(selectorOf(r));
    }
    // What is left is exactly the running Jobs: blue 2, green 5.
    const left = await allJobs();
    expect(left.filter(terminalCondition), 'finished Jobs left').to.deep.equal([]);
    expect(left.map((j) => jobLooks(j).instance ?? 'none').sort()).to.deep.equal(['blue', 'blue', 'green', 'green', 'green', 'green', 'green']);
  });
});

describe('one job-robot per namespace across three namespaces: namespaced Roles only, nothing cluster-wide', function () {
  this.timeout(90_000);
  let admin: KubeConfig;
  const tag = randomBytes(3).toString('hex');
  const namespaces: string[] = [];
  const pipes: Pipeline[] = [];
  const ledgers: JobLedger[] = [];
  const robotConfigs: KubeConfig[] = [];
  let redis: Redis;

  before(async function () {
    admin = adminConfig();
    redis = new Redis(redisUrl());
    for (let i = 0; i < 3; i++) namespaces.push(await shippedNamespace(admin, `many-ns${i}`));
    for (const ns of namespaces) {
      const ledger = new JobLedger(admin, ns);
      await ledger.start();
      ledgers.push(ledger);
    }
    pipes.push(
      ...(await startAll(
        namespaces.map((ns, i) => ({
          admin,
          namespace: ns,
          redisUrl: redisUrl(),
          queue: `${uniquePrefix(`many-ns${i}`)}queue`,
          reaperEnv: { REAPER_SUCCEEDED_MAX_AGE: '1s' },
          kubelet: { runMs: 300, intervalMs: 200 },
          pingEveryMs: 1000,
        })),
      )),
    );
    for (const ns of namespaces) robotConfigs.push(await serviceAccountConfig(admin, ns, 'job-robot'));
  });
  after(async function () {
    await Promise.all(pipes.map((p) => p.stop().catch(() => undefined)));
    await Component.killAll();
    await Promise.all(ledgers.map((l) => l.stop()));
    await Promise.all(namespaces.map((ns) => deleteNamespace(admin, ns)));
    redis?.disconnect();
  });

  it('each job-robot starts under its own Role: its start-up permission checks and template dry run pass, nothing logged as an error', async function () {
    for (const [i, p] of pipes.entries()) {
      for (const c of [p.launcher, p.reaper!, p.bridge]) {
        const res = await fetch(`${c.url}/health/readiness`);
        expect(res.status, `${c.name} in ${namespaces[i]}: ${await res.clone().text()}`).to.equal(200);
        expect(c.logs.filter((l) => l['level'] === 'error' || l['level'] === 'fatal'), `${c.name} in ${namespaces[i]}`).to.deep.equal([]);
      }
      expect(p.reaper!.logs.find((l) => l['message'] === 'reaper listening')?.['namespace']).to.equal(namespaces[i]);
    }
  });

  it('each creates, and reaps, the Jobs of its own queue in its own namespace only', async function () {
    const markers = pipes.map((_, i) => Array.from({ length: 3 }, (_, n) => `${tag}-ns${i}-${n}`));
    await Promise.all(pipes.map((p, i) => redis.lpush(p.keys.queue, ...markers[i]!.map((marker) => JSON.stringify({ marker })))));
    await eventually(
      async () => ledgers.every((l) => l.entries.size === 3 && l.all().every((e) => e.finished === 'Complete' && e.deletedAt !== undefined)),
      45_000,
      'every namespace: 3 Jobs, complete and reaped',
    );
    for (const [i, l] of ledgers.entries()) {
      expect(l.all().map((e) => markerOf(e.job)).sort(), `items in ${namespaces[i]}`).to.deep.equal(markers[i]);
      expect([...new Set(l.all().map((e) => e.eventSource))], `sources in ${namespaces[i]}`).to.deep.equal([pipes[i]!.source]);
      expect(await pipes[i]!.launcher.metric('job_robot_launcher_jobs_created_total'), `Jobs created by the launcher of ${namespaces[i]}`).to.equal(3);
      expect(await pipes[i]!.reaper!.metric('job_robot_reaper_jobs_deleted_total'), `Jobs deleted by the reaper of ${namespaces[i]}`).to.equal(3);
      expect(await pipes[i]!.reaper!.metric('job_robot_reaper_runs_total', { outcome: 'failed' }), `failed runs in ${namespaces[i]}`).to.equal(0);
    }
  });

  it('no ClusterRoleBinding names a job-robot ServiceAccount; the API server grants each Jobs at home and nothing elsewhere or cluster-wide', async function () {
    expect(await clusterGrantsTo(admin, namespaces), 'cluster-scoped grants').to.deep.equal([]);
    const role = parseManifests(readRepoFile('config/rbac.yaml')).find((o) => o.kind === 'Role') as unknown as { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    for (const [i, ns] of namespaces.entries()) {
      const neighbour = namespaces[(i + 1) % namespaces.length]!;
      const robot = robotConfigs[i]!;
      const bindings = (await rbac.listNamespacedRoleBinding({ namespace: ns })).items.filter((b) => b.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === 'job-robot'));
      expect(bindings.map((b) => `${b.metadata?.name} → ${b.roleRef.kind} ${b.roleRef.name}`), `bindings of job-robot in ${ns}`).to.deep.equal(['job-robot → Role job-robot']);
      expect(await ownRules(robot, ns), `rules at home in ${ns}`).to.deep.equal(flattenRules(role.rules));
      expect(await ownRules(robot, neighbour), `rules of ${ns}'s robot in ${neighbour}`).to.deep.equal([]);
      expect((await checkAccess(restOf(robot, 10_000), ns, [...JOB_ROBOT_PERMISSIONS])).missing, 'at home').to.deep.equal([]);
      for (const where of ['', neighbour]) {
        expect((await checkAccess(restOf(robot, 10_000), where, [...JOB_ROBOT_PERMISSIONS])).missing, `in ${where || 'every namespace'}`).to.deep.equal([...JOB_ROBOT_PERMISSIONS]);
      }
      const jobs = robot.makeApiClient(BatchV1Api);
      expect(await refusal(jobs.listJobForAllNamespaces()), 'list Jobs cluster-wide').to.equal(403);
      expect(await refusal(jobs.listNamespacedJob({ namespace: neighbour })), `list Jobs in ${neighbour}`).to.equal(403);
      expect(await refusal(jobs.createNamespacedJob({ namespace: neighbour, body: plainJob(`intruder-${tag}`) })), `create a Job in ${neighbour}`).to.equal(403);
      expect(await refusal(jobs.listNamespacedJob({ namespace: ns })), `list Jobs at home in ${ns}`).to.equal(0);
    }
  });
});

describe('instances sharing JOB_NAME_PREFIX: one event reaching two of them', function () {
  const ns = useNamespace('many-same');
  const launchers = new Map<string, TestLauncher>();

  before(async function () {
    const robot = await asJobRobot(ns.kc, ns.name);
    for (const instance of ['blue', 'green', '']) {
      launchers.set(instance, await startLauncher(robot, ns.name, { MAX_ACTIVE_JOBS: '0', ...(instance ? { INSTANCE: instance } : {}) }, { template: colouredTemplate(instance || 'plain') }));
    }
  });
  after(async function () {
    for (const l of launchers.values()) await l.close();
  });

  it("the second does not take the first's Job for its own: 500 naming the fix, no Job changes hands; its own redeliveries still answer 202", async function () {
    const batch = ns.kc.makeApiClient(BatchV1Api);
    for (const [first, second] of [['blue', 'green'], ['blue', ''], ['', 'green']] as const) {
      const event = { id: `shared-${first || 'plain'}-${second || 'plain'}`, source: '/shared', data: '{}' };
      const created = await postBinary(launchers.get(first)!.url, event);
      expect(created.status, `${first || 'unnamed'} creates`).to.equal(202);
      const location = created.headers.get('location')!;

      const taken = await postBinary(launchers.get(second)!.url, event);
      expect(taken.status, `${second || 'unnamed'} given ${first || 'unnamed'}'s event`).to.equal(500);
      expect(((await taken.json()) as { error: string }).error).to.equal('name-taken');
      const line = launchers.get(second)!.logs.find((x) => x['reason'] === 'name-taken' && x['eventId'] === event.id);
      expect(String(line?.['fix']), JSON.stringify(line)).to.contain('JOB_NAME_PREFIX');

      const job = await batch.readNamespacedJob({ namespace: ns.name, name: location.replace('/jobs/', '') });
      expect(jobLooks(job).instance, 'the Job keeps its instance').to.equal(first || undefined);
      expect((await fetch(`${launchers.get(second)!.url}${location}`)).status, `${second || 'unnamed'} asked for the Job`).to.equal(404);

      const again = await postBinary(launchers.get(first)!.url, event);
      expect([again.status, again.headers.get('x-job-status')], `${first || 'unnamed'} redelivered`).to.deep.equal([202, 'exists']);
    }
  });
});
