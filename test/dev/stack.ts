/**
 * `npm run dev`: the whole job-robot pipeline on this machine, wired as Knative would wire it.
 * The test control plane and kubectl (built on first use), a private redis-server (or REDIS_URL),
 * config/rbac.yaml applied, and the bridge, launcher and reaper as separate processes: the bridge's
 * K_SINK is the launcher, a timer stands in for the PingSource, and a kubelet stand-in finishes the
 * Jobs' pods so the whole lifecycle shows. Ctrl-C stops everything it started, and nothing else.
 *
 * `npm run dev -- --broker` puts Knative Eventing's own data plane between them instead (built on
 * first use, test/cluster/build.ts): config/broker.yaml's Broker and Trigger served by the real
 * broker ingress, in-memory channel dispatcher and broker filter, with the dead-letter sink as the
 * Trigger's dead-letter sink; and config/reaper.yaml's PingSource served by the real PingSource
 * adapter, which pings the reaper. No eventing controller runs: their status is written as it
 * would write it (test/helpers/knative-objects.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchV1Api, CoreV1Api, KubeConfig, type V1Job } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { ensureBinaries, locateBinaries } from '../cluster/build.ts';
import { createPingSource, routeBroker } from '../helpers/knative-objects.ts';
import { startKnative, type KnativePlane } from '../helpers/knative-plane.ts';
import { freePort } from '../cluster/ports.ts';
import { startKubeletStandIn } from '../helpers/kubelet.ts';
import { ROOT } from '../helpers/paths.ts';
import { pingReaper, waitHttpOk, writeJobRobotKubeconfig } from '../helpers/pipeline.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const NAMESPACE = 'job-robot';
const QUEUE = 'job-robot:queue';
const PING_EVERY_MS = Number(process.env['DEV_PING_SECONDS'] ?? 15) * 1000;
const POD_RUN_MS = Number(process.env['DEV_POD_RUN_SECONDS'] ?? 3) * 1000;

const USAGE = 'usage: npm run dev [-- --broker]';
const flags = process.argv.slice(2);
const unknownFlags = flags.filter((f) => f !== '--broker');
if (unknownFlags.length) {
  process.stderr.write(`${USAGE}\n  --broker  Knative Eventing's own Broker (ingress, channel, filter) and PingSource adapter between the bridge and the launcher\n(unknown: ${unknownFlags.join(' ')})\n`);
  process.exit(2);
}
/** With --broker: Knative's own data plane between the bridge and the functions. */
const BROKER = flags.includes('--broker');
/** The PingSource's schedule with --broker: a seconds field, every DEV_PING_SECONDS (1-59). */
const PING_SECONDS = PING_EVERY_MS / 1000;
if (BROKER && !(Number.isInteger(PING_SECONDS) && PING_SECONDS >= 1 && PING_SECONDS <= 59)) {
  process.stderr.write(`DEV_PING_SECONDS must be a whole number of seconds from 1 to 59 with --broker (the PingSource's schedule), not ${process.env['DEV_PING_SECONDS']}\n`);
  process.exit(2);
}

const COLORS: Record<string, string> = { bridge: '36', launcher: '35', reaper: '33', 'dead-letter': '31', knative: '94', kubelet: '32', jobs: '34', stack: '1' };
const tty = process.stdout.isTTY;
function say(who: string, msg: string): void {
  const tag = `[${who}]`.padEnd(13);
  process.stdout.write(`${tty ? `\x1b[${COLORS[who] ?? '0'}m${tag}\x1b[0m` : tag} ${msg}\n`);
}

/** Shows a component's JSON log lines as `level message {fields}`. */
function relay(name: string, child: ChildProcess): void {
  let buf = '';
  const onData = (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      try {
        const { level, message, time: _t, component: _c, pid: _p, hostname: _h, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
        say(name, `${String(level).padEnd(5)} ${String(message)}${extra}`);
      } catch {
        say(name, line);
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
}

function startComponent(name: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [join(ROOT, 'function/cli.ts'), name], {
    env: { ...process.env, LOG_LEVEL: 'info', OIDC_AUTHENTICATION: 'disabled', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  relay(name, child);
  child.on('exit', (code, signal) => {
    if (!stopping) say('stack', `${name} exited (${signal ?? code}); stop with Ctrl-C and look at its last lines above`);
  });
  return child;
}

/** Prints each Job's lifecycle: created, finished, reaped. */
function watchJobs(kc: KubeConfig): () => void {
  const batch = kc.makeApiClient(BatchV1Api);
  const seen = new Map<string, string>();
  const stateOf = (j: V1Job) =>
    j.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type ?? 'running';
  const timer = setInterval(async () => {
    try {
      const list = await batch.listNamespacedJob({ namespace: NAMESPACE });
      const now = new Set<string>();
      for (const j of list.items) {
        const name = j.metadata!.name!;
        now.add(name);
        const state = stateOf(j);
        if (!seen.has(name)) say('jobs', `${name} created (event ${j.metadata?.annotations?.['job-robot.dev/event-id'] ?? '?'})`);
        else if (seen.get(name) !== state) say('jobs', `${name} ${state === 'Complete' ? 'complete' : state.toLowerCase()}`);
        seen.set(name, state);
      }
      for (const name of [...seen.keys()]) {
        if (!now.has(name)) {
          say('jobs', `${name} reaped`);
          seen.delete(name);
        }
      }
    } catch {
      // API server busy: next tick
    }
  }, 1000);
  return () => clearInterval(timer);
}

let stopping = false;

async function main(): Promise<void> {
  const t0 = Date.now();
  // The control plane, and the kubectl the printed commands name: a fresh machine may have none.
  const { missing } = locateBinaries();
  if (missing.length) say('stack', `building ${missing.join(', ')} from source, once (progress below)`);
  const { kubectl, ...binaries } = await ensureBinaries();
  const cp: ControlPlane = await startControlPlane({ binaries });
  const redis: RedisServer = process.env['REDIS_URL']
    ? { url: process.env['REDIS_URL'], port: 0, stop: async () => undefined }
    : await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-dev-'));
  const children: ChildProcess[] = [];
  const cleanups: Array<() => void | Promise<void>> = [];
  let plane: KnativePlane | undefined;

  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stack', `stopping: bridge, launcher, reaper${BROKER ? ", dead-letter sink, Knative's data plane" : ''}, Redis, control plane`);
    for (const c of cleanups.reverse()) await c();
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
          }),
      ),
    );
    // Once nothing sends to it any more; it releases the dispatcher's ports for others.
    await plane?.stop().catch((err: Error) => say('stack', `stopping Knative's data plane: ${err.message}`));
    await redis.stop();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    const admin = new KubeConfig();
    admin.loadFromFile(cp.kubeconfig);
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NAMESPACE } } });
    const robotKubeconfig = await writeJobRobotKubeconfig(admin, NAMESPACE, dir, 24 * 3600);

    const [launcherPort, reaperPort, bridgePort, sinkPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const asRobot = { KUBECONFIG: robotKubeconfig, NAMESPACE };
    // The bridge's queue, which the reaper reads too (it keeps a Job while its item is in flight).
    const queue = { REDIS_URL: redis.url, QUEUE_KEY: QUEUE };
    children.push(startComponent('launcher', { ...asRobot, PORT: String(launcherPort), MAX_ACTIVE_JOBS: '50' }));
    children.push(
      startComponent('reaper', {
        ...asRobot,
        ...queue,
        PORT: String(reaperPort),
        REAPER_SUCCEEDED_MAX_AGE: '20s',
        REAPER_FAILED_MAX_AGE: '10m',
      }),
    );
    if (BROKER) children.push(startComponent('dead-letter', { ...queue, NAMESPACE, PORT: String(sinkPort) }));
    const launcherUrl = `http://127.0.0.1:${launcherPort}`;
    const reaperUrl = `http://127.0.0.1:${reaperPort}`;
    await waitHttpOk('launcher', `${launcherUrl}/health/readiness`);
    await waitHttpOk('reaper', `${reaperUrl}/health/readiness`);

    let sink = launcherUrl;
    const brokerLines: string[] = [];
    if (BROKER) {
      await waitHttpOk('dead-letter sink', `http://127.0.0.1:${sinkPort}/health/readiness`);
      say('knative', "starting Knative Eventing's data plane (built from source on first use: progress below)");
      plane = await startKnative(admin, { components: ['ingress', 'filter', 'dispatcher', 'mtping'] });
      // As shipped: config/broker.yaml's Trigger delivery (12 retries, exponential from 1 s).
      const route = await routeBroker(plane, NAMESPACE, { launcherPort, sinkPort, delivery: {} });
      const ping = await createPingSource(plane, NAMESPACE, { reaperPort, schedule: `*/${PING_SECONDS} * * * * *` });
      sink = route.localBrokerUrl!;
      const logs = [plane.ingress, plane.dispatcher, plane.filter, plane.mtping].map((p) => `${p!.name} ${p!.logFile}`);
      brokerLines.push(
        `  Broker            ${route.brokerUrl}`,
        `                    (the ingress at ${sink}; Trigger ${String(route.trigger.metadata!.name)} → ${route.launcherUrl})`,
        `  dead-letter sink  http://127.0.0.1:${sinkPort}   (the Trigger's dead-letter sink, as ${route.sinkUrl})`,
        `  PingSource        ${ping.name}, every ${PING_SECONDS} s → ${ping.sinkUrl}`,
        `  Knative logs      ${logs.join('\n                    ')}`,
      );
    }
    children.push(
      startComponent('bridge', {
        ...queue,
        K_SINK: sink,
        PORT: String(bridgePort),
        CONSUMER: 'dev-bridge',
        // Items may name themselves: {"requestId": "..."} becomes the event id (README, Results).
        ID_FIELD: 'requestId',
        // What config/bridge.yaml's ContainerSource adds; the Trigger lets only these events through.
        ...(BROKER ? { K_CE_OVERRIDES: JSON.stringify({ extensions: { jobrobot: 'job-robot' } }) } : {}),
      }),
    );
    await waitHttpOk('bridge', `http://127.0.0.1:${bridgePort}/health/readiness`);

    const kubelet = startKubeletStandIn(admin, NAMESPACE, {
      runMs: POD_RUN_MS,
      onFinish: (pod, phase) => say('kubelet', `pod ${pod.metadata?.name} reported ${phase} (local stand-in for a kubelet)`),
    });
    cleanups.push(() => kubelet.stop());
    cleanups.push(watchJobs(admin));

    // With the Broker, Knative's PingSource adapter pings the reaper; without, this timer does.
    if (!BROKER) {
      let pings = 0;
      const ping = setInterval(() => {
        pingReaper(reaperUrl, `dev-ping-${++pings}`, NAMESPACE)
          .then(({ summary }) => {
            if (summary['deleted']) say('reaper', `ping: deleted ${String(summary['deleted'])} finished Job(s)`);
          })
          .catch(() => undefined);
      }, PING_EVERY_MS);
      cleanups.push(() => clearInterval(ping));
    }

    const redisCli = redis.port ? `redis-cli -p ${redis.port}` : `redis-cli -u ${redis.url}`;
    const lines = [
      '',
      `job-robot is running locally (ready in ${((Date.now() - t0) / 1000).toFixed(1)} s). Ctrl-C stops everything.`,
      '',
      `  admin kubeconfig  ${cp.kubeconfig}`,
      `  job-robot's       ${robotKubeconfig}  (the ServiceAccount's token, as in a pod)`,
      `  Redis             ${redis.url}   queue key ${QUEUE}`,
      `  launcher          ${launcherUrl}   (metrics ${launcherUrl}/metrics)`,
      `  reaper            ${reaperUrl}   (pinged every ${PING_EVERY_MS / 1000} s${BROKER ? ' by the PingSource' : ''}; reaps succeeded Jobs after 20 s)`,
      `  bridge            K_SINK=${sink}   (metrics http://127.0.0.1:${bridgePort}/metrics)`,
      ...brokerLines,
      '',
      'Push an item:',
      `  ${redisCli} LPUSH ${QUEUE} '{"report":"monthly"}'`,
      'Watch the Jobs:',
      `  ${kubectl} --kubeconfig ${cp.kubeconfig} -n ${NAMESPACE} get jobs -w`,
      'Send a CloudEvent straight to the launcher:',
      `  curl -i ${launcherUrl} -H 'ce-specversion: 1.0' -H 'ce-id: hello-1' -H 'ce-source: /curl' \\`,
      `       -H 'ce-type: dev.job-robot.queue.item' -H 'content-type: application/json' -d '{"hello":"world"}'`,
      ...(BROKER
        ? [
            "Send one to the Broker (the Trigger passes only events with this job-robot's jobrobot attribute):",
            `  curl -i ${sink} -H 'ce-specversion: 1.0' -H 'ce-id: hello-2' -H 'ce-source: /curl' \\`,
            `       -H 'ce-type: dev.job-robot.queue.item' -H 'ce-jobrobot: job-robot' -H 'content-type: application/json' -d '{"hello":"broker"}'`,
          ]
        : []),
      'Dead letters:',
      `  ${redisCli} XRANGE {${QUEUE}}:dead-letter - +`,
      'An item with its own id, and what became of it (locally the reaper records the result at its next ping):',
      `  ${redisCli} LPUSH ${QUEUE} '{"requestId":"report-1","report":"monthly"}'`,
      `  ${redisCli} HGETALL '{${QUEUE}}:result:report-1'`,
      `  REDIS_URL=${redis.url} QUEUE_KEY=${QUEUE} KUBECONFIG=${cp.kubeconfig} NAMESPACE=${NAMESPACE} npm run job-robot -- status report-1 --wait 60`,
      '',
    ];
    for (const l of lines) process.stdout.write(`${l}\n`);
  } catch (err) {
    say('stack', `failed to start: ${(err as Error).message}`);
    await shutdown(1);
  }
}

await main();
