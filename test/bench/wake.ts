/**
 * `npm run bench -- wake`: how long a scale-from-zero wake takes the Knative way, on a private
 * control plane: container start (the queue-proxy and the launcher spawned together, as the kubelet
 * starts a pod's containers) to the first 202 through Knative Serving's real queue-proxy
 * (test/helpers/queue-proxy.ts), with the environment Knative gives both. The caller plays the
 * activator: it probes the queue-proxy's readiness every 2 ms, the way a kubelet or activator
 * probe sees it, and sends the event once it passes. Beside it, the same launcher spawned alone
 * with its first event sent straight to it, for the queue-proxy's share.
 *
 * `wakeSamples` and `helloWakeSamples` are what the launcher benchmark calls for the queue-proxy row
 * of its cold-start table. Prints a table; the last line is `{"bench":"wake","ratio":<through / direct>,...}`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_TEMPLATE } from '../../function/kube/job-template.ts';
import { startControlPlane } from '../cluster/control-plane.ts';
import { ensureQueueProxy } from '../cluster/build.ts';
import { freePort } from '../cluster/ports.ts';
import { adminConfig, applyManifests, createNamespace, serviceAccountConfig } from '../helpers/kube.ts';
import { stopChild } from '../helpers/child.ts';
import { encodeHeaderValue, kubeconfigFile, spawnLauncher } from '../helpers/launcher.ts';
import { readRepoFile, ROOT } from '../helpers/paths.ts';
import { launcherRevision, lockQueueProxyPorts, spawnQueueProxy, untilReady, userContainerEnv } from '../helpers/queue-proxy.ts';
import { percentile, printResult, printTable } from './report.ts';

const SAMPLES = Number(process.env['BENCH_COLD_STARTS'] ?? 5);

export interface WakeInput {
  /** A kubeconfig file acting as the job-robot ServiceAccount in `namespace`. */
  kubeconfigPath: string;
  namespace: string;
  /** The launcher's entry file (default function/cli.ts; the image's, e.g. dist/function/cli.js, when built). */
  entry?: string;
  /** Variables for the launcher over the defaults (JOB_TEMPLATE_PATH, Node flags, OIDC settings...). */
  env?: Record<string, string>;
  /** The Authorization header the first event carries (with OIDC_AUTHENTICATION=enabled in `env`: the sender's token). */
  authorization?: string;
  samples?: number;
}

export interface WakeSample {
  /** Spawn to the queue-proxy's first passing readiness probe. */
  readyMs: number;
  /** Spawn to the first answer through the queue-proxy (the launcher's 202; a hello-world's 200). */
  firstAnswerMs: number;
}

/** The launcher's environment: the caller's over Knative's and the defaults (OIDC off unless the caller turns it on and gives a token). */
function launcherEnv(input: WakeInput, port: number, knative: Record<string, string>): Record<string, string> {
  return { NAMESPACE: input.namespace, KUBECONFIG: input.kubeconfigPath, LOG_LEVEL: 'warn', OIDC_AUTHENTICATION: 'disabled', ...knative, PORT: String(port), ...input.env };
}

async function postEvent(url: string, id: string, authorization?: string): Promise<number> {
  const res = await fetch(`${url}/`, {
    method: 'POST',
    headers: { ...(authorization ? { authorization } : {}), 'ce-specversion': '1.0', 'ce-id': encodeHeaderValue(id), 'ce-source': '/bench', 'ce-type': 'dev.job-robot.queue.item', 'content-type': 'application/json' },
    body: JSON.stringify({ id }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Samples of container start to first 202 through the queue-proxy, with the queue-proxy's readiness on the way. */
export async function wakeSamples(input: WakeInput): Promise<WakeSample[]> {
  return behindQueueProxy(input.namespace, input.samples ?? SAMPLES, 202, async (userPort, knative) => {
    const launcher = await spawnLauncher(launcherEnv(input, userPort, knative), { waitListening: false, ...(input.entry ? { entry: input.entry } : {}) });
    return {
      first: (url, i) => postEvent(url, `wake-${Date.now()}-${i}`, input.authorization),
      why: () => `${launcher.stderr()}${launcher.stdout().slice(-2000)}`,
      stop: async () => {
        launcher.child.kill('SIGKILL');
        await launcher.exited;
      },
    };
  });
}

/**
 * The same for an express hello-world that answers 200 on every path (the readiness probe's too):
 * the baseline for the launcher's wake through the queue-proxy, which any Knative function pays.
 * `args` start Node on the hello-world; `env` is added to Knative's.
 */
export async function helloWakeSamples(namespace: string, args: string[], env: Record<string, string>, samples = SAMPLES): Promise<WakeSample[]> {
  return behindQueueProxy(namespace, samples, 200, async (userPort, knative) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...knative, ...env, PORT: String(userPort) }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    return {
      first: async (url) => {
        const res = await fetch(`${url}/`);
        await res.arrayBuffer();
        return res.status;
      },
      why: () => `hello-world exit code ${child.exitCode}`,
      stop: () => stopChild(child, exited),
    };
  });
}

interface UserContainer {
  /** The first request through the queue-proxy at `url`; resolves with its status. */
  first(url: string, i: number): Promise<number>;
  /** What the container said, for a failure's message. */
  why(): string;
  stop(): Promise<void>;
}

/** Spawns the queue-proxy and a user container together, `samples` times; container start to the first `want` answer through the queue-proxy. */
async function behindQueueProxy(namespace: string, samples: number, want: number, start: (userPort: number, knative: Record<string, string>) => Promise<UserContainer>): Promise<WakeSample[]> {
  const binary = await ensureQueueProxy();
  const release = await lockQueueProxyPorts();
  const out: WakeSample[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const userPort = await freePort();
      const rev = launcherRevision(namespace);
      const qp = await spawnQueueProxy(rev, userPort, binary);
      const user = await start(userPort, userContainerEnv(rev, userPort));
      try {
        const ready = await untilReady(qp, 30_000, 2);
        const status = await user.first(qp.url, i);
        if (status !== want) throw new Error(`first request through the queue-proxy answered ${status}:\n${user.why()}`);
        out.push({ readyMs: ready - qp.startedAt, firstAnswerMs: performance.now() - qp.startedAt });
      } finally {
        await qp.kill();
        await user.stop();
      }
    }
  } finally {
    release();
  }
  return out;
}

/** The launcher alone: spawn to its first 202, polling with the event every 2 ms. */
async function directWake(input: WakeInput): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < (input.samples ?? SAMPLES); i++) {
    const port = await freePort();
    const t0 = performance.now();
    const launcher = await spawnLauncher(launcherEnv(input, port, {}), { waitListening: false, ...(input.entry ? { entry: input.entry } : {}) });
    try {
      for (;;) {
        if (launcher.child.exitCode !== null) throw new Error(`launcher exited ${launcher.child.exitCode}: ${launcher.stderr()}`);
        const status = await postEvent(`http://127.0.0.1:${port}`, `direct-${Date.now()}-${i}`).catch(() => 0);
        if (status === 202) break;
        if (performance.now() - t0 > 30_000) throw new Error('launcher: no 202 within 30 s');
        await new Promise((r) => setTimeout(r, 2));
      }
      out.push(performance.now() - t0);
    } finally {
      launcher.child.kill('SIGKILL');
      await launcher.exited;
    }
  }
  return out;
}

export async function main(): Promise<void> {
  const cp = await startControlPlane();
  process.env['JOB_ROBOT_TEST_KUBECONFIG'] = cp.kubeconfig;
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-bench-wake-'));
  let kc: { path: string; remove(): void } | undefined;
  try {
    const admin = adminConfig();
    const namespace = await createNamespace(admin, 'bench-wake');
    await applyManifests(admin, readRepoFile('config/rbac.yaml'), namespace);
    kc = kubeconfigFile(await serviceAccountConfig(admin, namespace, 'job-robot'));
    const template = structuredClone(DEFAULT_TEMPLATE);
    template.spec!.suspend = true;
    const templateFile = join(dir, 'job.json');
    writeFileSync(templateFile, JSON.stringify(template));
    const input: WakeInput = { kubeconfigPath: kc.path, namespace, env: { JOB_TEMPLATE_PATH: templateFile, MAX_ACTIVE_JOBS: '1000000' } };

    // Alternate the two, one sample at a time, so machine load falls on both alike.
    const through: WakeSample[] = [];
    const direct: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      through.push(...(await wakeSamples({ ...input, samples: 1 })));
      direct.push(...(await directWake({ ...input, samples: 1 })));
    }
    const median = (xs: number[]) => percentile(xs, 50);
    const first202 = through.map((s) => s.firstAnswerMs);
    const ready = through.map((s) => s.readyMs);
    printTable(`wake: container start to first 202, median of ${SAMPLES} (function/cli.ts; queue-proxy knative.dev/serving v0.49.1)`, [
      { path: 'through the queue-proxy', 'ready ms': median(ready), 'first 202 ms': median(first202), 'min ms': Math.min(...first202), 'max ms': Math.max(...first202) },
      { path: 'launcher alone', 'ready ms': '', 'first 202 ms': median(direct), 'min ms': Math.min(...direct), 'max ms': Math.max(...direct) },
    ]);
    process.stdout.write('\n');
    printResult('wake', median(first202) / median(direct), {
      queue_proxy_ready_ms: median(ready),
      queue_proxy_first_202_ms: median(first202),
      direct_first_202_ms: median(direct),
      samples: SAMPLES,
    });
  } finally {
    kc?.remove();
    rmSync(dir, { recursive: true, force: true });
    await cp.stop();
  }
}
