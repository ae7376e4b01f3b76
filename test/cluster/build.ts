/**
 * Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, and kubectl for
 * rendering config/ with kustomize and for people) from the Go modules
 * pinned in test/cluster/{k8s,etcd}/go.mod into a cache folder outside the repository, and reuses it.
 * Run directly: `node test/cluster/build.ts`. Prints the folder on its last line.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, renameSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { cacheDir, etcdVersion, kubernetesVersion } from './versions.ts';

const here = import.meta.dirname;
export const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const;
export type Binary = (typeof BINARIES)[number];
export type Binaries = Record<Binary, string>;

const log = (msg: string) => process.stderr.write(`[control-plane] ${msg}\n`);

/** The binaries a control plane needs; kubectl is for the config tests and the commands `npm run dev` prints. */
export const CONTROL_PLANE: readonly Binary[] = ['etcd', 'kube-apiserver', 'kube-controller-manager'];

/** Where each binary comes from: KUBEBUILDER_ASSETS first (envtest convention), else the cache. */
export function locateBinaries(wanted: readonly Binary[] = BINARIES): { found: Partial<Binaries>; missing: Binary[] } {
  const assets = process.env['KUBEBUILDER_ASSETS'];
  const cache = cacheDir();
  const found: Partial<Binaries> = {};
  const missing: Binary[] = [];
  for (const name of wanted) {
    const candidates = [assets && join(assets, name), join(cache, name)].filter((p): p is string => !!p);
    const hit = candidates.find((p) => existsSync(p) && statSync(p).isFile());
    if (hit) found[name] = hit;
    else missing.push(name);
  }
  return { found, missing };
}

function goBuild(moduleDir: string, out: string, pkg: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', out, pkg], {
      cwd: join(here, moduleDir),
      env: { ...process.env, GOWORK: 'off', CGO_ENABLED: '0', GOFLAGS: '-mod=readonly', GOTOOLCHAIN: 'local' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', (err) =>
      reject(new Error(`cannot run 'go' (${err.message}); install Go 1.25+ or set KUBEBUILDER_ASSETS`)),
    );
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`go build in ${moduleDir} exited ${code}`))));
  });
}

const SOURCES: Record<Binary, { module: string; pkg: string }> = {
  etcd: { module: 'etcd', pkg: 'go.etcd.io/etcd/server/v3' },
  'kube-apiserver': { module: 'k8s', pkg: 'k8s.io/kubernetes/cmd/kube-apiserver' },
  'kube-controller-manager': { module: 'k8s', pkg: 'k8s.io/kubernetes/cmd/kube-controller-manager' },
  kubectl: { module: 'k8s', pkg: 'k8s.io/kubernetes/cmd/kubectl' },
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the build lock (a file holding the builder's pid), waiting while another live process
 * holds it, so test runs started together on a fresh machine build once, not once each.
 */
async function lockBuild(lock: string): Promise<() => void> {
  let announced = false;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(readFileSync(lock, 'utf8').trim());
    if (!Number.isInteger(holder) || holder <= 0 || !alive(holder)) {
      rmSync(lock, { force: true });
      continue;
    }
    if (!announced) log(`waiting for the build in process ${holder} to finish`);
    announced = true;
    await sleep(2_000);
  }
}

/** Returns the `wanted` binaries (default: all), building the missing ones into the cache first. */
export async function ensureBinaries(wanted: readonly Binary[] = BINARIES): Promise<Binaries> {
  const cached = locateBinaries(wanted);
  if (cached.missing.length === 0) return cached.found as Binaries;
  const cache = cacheDir();
  mkdirSync(dirname(cache), { recursive: true });
  const unlock = await lockBuild(`${cache}.lock`);
  try {
    return await build(wanted, cache);
  } finally {
    unlock();
  }
}

async function build(wanted: readonly Binary[], cache: string): Promise<Binaries> {
  // Another process may have built them while this one waited for the lock.
  const { found, missing } = locateBinaries(wanted);
  if (missing.length === 0) return found as Binaries;

  const staging = `${cache}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  log(`building ${missing.join(', ')} (Kubernetes ${kubernetesVersion}, etcd ${etcdVersion}) into ${cache}`);
  log('a cold build downloads the modules and compiles Kubernetes: about 8 minutes on 2 cores; later runs reuse it');
  const started = Date.now();
  const heartbeat = setInterval(() => log(`still building... ${Math.round((Date.now() - started) / 1000)}s`), 30_000);
  try {
    for (const name of missing) {
      const { module, pkg } = SOURCES[name];
      log(`go build ${pkg}`);
      await goBuild(module, join(staging, name), pkg);
    }
    mkdirSync(cache, { recursive: true });
    for (const name of missing) renameSync(join(staging, name), join(cache, name));
    writeFileSync(join(cache, 'VERSIONS'), `kubernetes ${kubernetesVersion}\netcd ${etcdVersion}\n`);
  } finally {
    clearInterval(heartbeat);
    rmSync(staging, { recursive: true, force: true });
  }
  log(`built in ${Math.round((Date.now() - started) / 1000)}s`);
  const after = locateBinaries(wanted);
  if (after.missing.length) throw new Error(`build finished but ${after.missing.join(', ')} missing`);
  return after.found as Binaries;
}

if (import.meta.main) {
  const bins = await ensureBinaries();
  for (const [name, path] of Object.entries(bins)) log(`${name}: ${path}`);
  process.stdout.write(`${cacheDir()}\n`);
}
