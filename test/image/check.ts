/**
 * Builds the Dockerfile with buildah and runs the image once per component against a real control
 * plane and Redis: each must start, run as a non-root user and answer its readiness endpoint with 200.
 * `node test/image/check.ts`. Fails loudly when buildah is missing: nothing here is optional.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../cluster/control-plane.ts';
import { freePort } from '../cluster/ports.ts';
import { applyManifests, createNamespace, serviceAccountConfig } from '../helpers/kube.ts';
import { readRepoFile, ROOT } from '../helpers/paths.ts';
import { startRedis } from '../helpers/redis.ts';

const BASE = 'docker.io/library/node:24-slim';
const IMAGE = 'localhost/job-robot:check';
const B = ['--storage-driver', 'vfs'];
const log = (msg: string) => process.stderr.write(`[image] ${msg}\n`);

function buildah(args: string[], opts: { quiet?: boolean } = {}): string {
  const res = spawnSync('buildah', [...B, ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', opts.quiet ? 'pipe' : 'inherit'], maxBuffer: 64 << 20 });
  if (res.error) throw new Error(`buildah is required for the image check (apt-get install buildah): ${res.error.message}`);
  if (res.status !== 0) throw new Error(`buildah ${args.join(' ')} failed (${res.status}): ${res.stderr ?? ''}`);
  return res.stdout.trim();
}

function hasImage(name: string): boolean {
  const res = spawnSync('buildah', [...B, 'inspect', '--type', 'image', name], { stdio: 'ignore' });
  return res.status === 0;
}

async function waitReady(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`container exited with ${child.exitCode} before becoming ready`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (last: ${last})`);
}

async function main(): Promise<void> {
  if (!hasImage(BASE)) {
    log(`no ${BASE} in local storage: assembling the stand-in`);
    const res = spawnSync(join(ROOT, 'test/image/base-image.sh'), [BASE], { stdio: 'inherit' });
    if (res.status !== 0) throw new Error('base image stand-in failed');
  }
  const t0 = Date.now();
  buildah(['bud', '--isolation', 'chroot', '--pull=never', '--layers=false', '-t', IMAGE, '.']);
  log(`built ${IMAGE} in ${Math.round((Date.now() - t0) / 1000)} s`);
  const config = JSON.parse(buildah(['inspect', '--type', 'image', IMAGE], { quiet: true })) as {
    OCIv1: { config: { Entrypoint?: string[]; User?: string } };
  };
  const entrypoint = config.OCIv1.config.Entrypoint ?? [];
  if (!entrypoint.length) throw new Error('image has no ENTRYPOINT');

  const cp = await startControlPlane();
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-image-'));
  chmodSync(dir, 0o755); // the image's non-root user reads the kubeconfig mounted from here
  const containers: string[] = [];
  const children: ChildProcess[] = [];
  try {
    const admin = new KubeConfig();
    admin.loadFromFile(cp.kubeconfig);
    const ns = await createNamespace(admin, 'image');
    await applyManifests(admin, readRepoFile('config/rbac.yaml'), ns);
    const asRobot = await serviceAccountConfig(admin, ns, 'job-robot');
    writeFileSync(join(dir, 'config'), asRobot.exportConfig(), { mode: 0o644 });

    const ctr = buildah(['from', '--pull=never', IMAGE], { quiet: true });
    containers.push(ctr);
    const uid = buildah(['run', '--isolation', 'chroot', ctr, '--', 'node', '-p', 'process.getuid()'], { quiet: true });
    if (uid === '0' || !/^\d+$/.test(uid)) throw new Error(`image runs as uid ${uid}; expected non-root`);
    log(`runs as uid ${uid} (USER ${config.OCIv1.config.User ?? '(unset)'})`);

    for (const component of ['launcher', 'reaper', 'bridge', 'dead-letter', 'results']) {
      const port = await freePort();
      const sink = await freePort();
      const env = {
        PORT: String(port),
        KUBECONFIG: '/kube/config',
        NAMESPACE: ns,
        REDIS_URL: redis.url,
        K_SINK: `http://127.0.0.1:${sink}`,
        LOG_LEVEL: 'warn',
        // As Knative sets it: the audience each function verifies tokens for (auth stays on).
        K_SERVICE: `job-robot-${component}`,
      };
      const envArgs = Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
      const child = spawn(
        'buildah',
        [...B, 'run', '--isolation', 'chroot', '-v', `${dir}:/kube:ro`, ...envArgs, ctr, '--', ...entrypoint, component],
        { stdio: ['ignore', 'inherit', 'inherit'] },
      );
      children.push(child);
      await waitReady(`http://127.0.0.1:${port}/health/readiness`, child);
      log(`${component}: ready on :${port}`);
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    log('image check passed');
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const c of containers) spawnSync('buildah', [...B, 'rm', c], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
    await redis.stop();
    await cp.stop();
  }
}

await main();
