/**
 * Knative Eventing's data plane as local processes against the test control plane: the real
 * broker ingress (`cmd/broker/ingress`) and filter (`cmd/broker/filter`), the in-memory channel's
 * dispatcher (`cmd/in_memory/channel_dispatcher`) and the PingSource adapter (`cmd/mtping`), all
 * built from knative.dev/eventing (test/cluster/knative/go.mod) by test/cluster/build.ts.
 *
 * Each plane gets its own system namespace holding Knative's released ConfigMaps (config-features
 * settable per plane and per test) and the components' ServiceAccounts, each process acting as its
 * own with the release's roles; the CRDs of the same release in the API server; and a
 * ClusterNames proxy through which the processes reach each other and job-robot by their cluster
 * names. No eventing controller runs: knative-objects.ts writes the status it would write.
 */
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, type KubeConfig, type V1ConfigMap, type V1RoleBinding } from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ensureKnative, type KnativeBinaries } from '../cluster/build.ts';
import { lockFile } from '../cluster/lock.ts';
import { freePort, isPortFree } from '../cluster/ports.ts';
import { applyManifests, createNamespace, deleteNamespace, eventually, parseManifests, serviceAccountConfig } from './kube.ts';
import { installCrdFiles } from './knative.ts';
import { ClusterNames } from './knative-names.ts';

/** The in-memory channel dispatcher's ports (the PingSource adapter's probes use the first): constants in Knative's code, not settable. */
export const DISPATCHER_PORTS = [8080, 8443] as const;

export type Component = 'ingress' | 'filter' | 'dispatcher' | 'mtping';

/** One Knative process, its log kept in a file. */
export class KnativeProcess {
  readonly exited: Promise<number | null>;
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** The port it serves events on (0 for mtping). */
  readonly port: number;

  constructor(name: string, child: ChildProcess, logFile: string, port: number) {
    this.name = name;
    this.child = child;
    this.logFile = logFile;
    this.port = port;
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** The JSON lines it logged (zap's encoding from config-logging), parsed. */
  lines(): Array<Record<string, unknown>> {
    return this.log()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    if (!this.running()) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface KnativePlane {
  admin: KubeConfig;
  /** The namespace playing `knative-eventing`. */
  system: string;
  names: ClusterNames;
  binaries: KnativeBinaries;
  ingress?: KnativeProcess;
  filter?: KnativeProcess;
  dispatcher?: KnativeProcess;
  mtping?: KnativeProcess;
  /** `http://broker-filter.<system>.svc.cluster.local` */
  filterUrl: string;
  /** `http://broker-ingress.<system>.svc.cluster.local`: a Broker's address is this and `/<namespace>/<name>`. */
  ingressUrl: string;
  /** Merges `flags` into config-features; the components watch it and pick them up. */
  setFeatures(flags: Record<string, string>): Promise<void>;
  /** The last lines of every process's log, for failure messages. */
  tails(lines?: number): string;
  stop(): Promise<void>;
}

export interface PlaneOptions {
  components: readonly Component[];
  /** config-features entries over Knative's released defaults. */
  features?: Record<string, string>;
}

/**
 * Installs the CRDs the data plane's informers watch, from the same Eventing release as the
 * binaries. Returns those that were not there before, for removal when the plane stops: other
 * tests expect the API server as they left it (the doctor's, for one, that eventing.knative.dev
 * is not served once it deletes the Broker and Trigger CRDs).
 */
async function installCrds(admin: KubeConfig, dir: string): Promise<string[]> {
  const crds = join(dir, 'crds');
  const ext = admin.makeApiClient(ApiextensionsV1Api);
  const before = new Set((await ext.listCustomResourceDefinition()).items.map((c) => c.metadata!.name!));
  const names = await installCrdFiles(admin, readdirSync(crds).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(crds, f)));
  return names.filter((n) => !before.has(n));
}

/**
 * Deletes the CRDs `names` and waits (up to a minute) until they are gone. Their objects are
 * deleted first and awaited: a CRD deleted while objects remain waits for the API server's
 * clean-up controller, whose retries back off (exponentially) while a namespace's deletion holds
 * those objects, which can outlast any sensible wait.
 */
async function removeCrds(admin: KubeConfig, names: readonly string[]): Promise<void> {
  const ext = admin.makeApiClient(ApiextensionsV1Api);
  const custom = admin.makeApiClient(CustomObjectsApi);
  const crds = (await ext.listCustomResourceDefinition()).items.filter((c) => names.includes(c.metadata!.name!));
  const kinds = crds.map((c) => ({ group: c.spec.group, version: c.spec.versions.find((v) => v.storage)?.name ?? c.spec.versions[0]!.name, plural: c.spec.names.plural }));
  const remaining = async () => {
    let count = 0;
    for (const k of kinds) count += ((await custom.listClusterCustomObject(k).catch(() => ({ items: [] }))) as { items: unknown[] }).items.length;
    return count;
  };
  for (const k of kinds) {
    const list = (await custom.listClusterCustomObject(k).catch(() => ({ items: [] }))) as { items: Array<{ metadata: { name: string; namespace?: string } }> };
    for (const o of list.items) {
      const ref = { ...k, name: o.metadata.name };
      await (o.metadata.namespace ? custom.deleteNamespacedCustomObject({ ...ref, namespace: o.metadata.namespace }) : custom.deleteClusterCustomObject(ref)).catch(() => undefined);
    }
  }
  await eventually(async () => (await remaining()) === 0, 60_000, `the objects of ${names.join(', ')} to be deleted`);
  for (const name of names) await ext.deleteCustomResourceDefinition({ name }).catch(() => undefined);
  await eventually(
    async () => !(await ext.listCustomResourceDefinition()).items.some((c) => names.includes(c.metadata!.name!)),
    60_000,
    `the CRDs ${names.join(', ')} to be deleted`,
  ).catch(async (err: Error) => {
    const left = (await ext.listCustomResourceDefinition()).items.filter((c) => names.includes(c.metadata!.name!));
    err.message += `; still there: ${left.map((c) => `${c.metadata!.name} ${JSON.stringify(c.status?.conditions?.map((x) => `${x.type}=${x.status}: ${x.message ?? ''}`))}`).join('; ')}`;
    throw err;
  });
}

/**
 * Knative's released ConfigMaps into `system`, with `features` over config-features' data and
 * config-logging at debug level (the logs are files the tests read).
 */
export async function applyConfigMaps(admin: KubeConfig, dir: string, system: string, features: Record<string, string>, level = 'debug'): Promise<void> {
  const folder = join(dir, 'configmaps');
  for (const file of readdirSync(folder).sort()) {
    const cm = parse(readFileSync(join(folder, file), 'utf8')) as V1ConfigMap;
    cm.metadata = { ...cm.metadata, namespace: system };
    if (cm.metadata.name === 'config-features') cm.data = { ...cm.data, ...features };
    if (cm.metadata.name === 'config-logging' && cm.data?.['zap-logger-config']) {
      cm.data['zap-logger-config'] = cm.data['zap-logger-config'].replace('"level": "info"', `"level": "${level}"`);
    }
    await applyManifests(admin, JSON.stringify(cm));
  }
}

/** The ServiceAccount each component runs as in a Knative install (config/ of the release). */
const SERVICE_ACCOUNTS = { ingress: 'mt-broker-ingress', filter: 'mt-broker-filter', dispatcher: 'imc-dispatcher', mtping: 'pingsource-mt-adapter' } as const;

/**
 * The components' ServiceAccounts, Roles and bindings (the files in `dir`/`folder`) into
 * `system`, their ClusterRoles as released; ClusterRoleBindings get the namespace in their names,
 * so planes do not share them. Returns the names of the ClusterRoleBindings made.
 */
export async function applyRbac(admin: KubeConfig, dir: string, system: string, folderName = 'rbac'): Promise<string[]> {
  const folder = join(dir, folderName);
  const bindings: string[] = [];
  for (const file of readdirSync(folder).sort()) {
    for (const doc of parseManifests(readFileSync(join(folder, file), 'utf8'))) {
      const subjects = (doc as V1RoleBinding).subjects;
      for (const s of subjects ?? []) if (s.kind === 'ServiceAccount') s.namespace = system;
      if (doc.kind === 'ClusterRoleBinding') {
        doc.metadata!.name = `${doc.metadata!.name}-${system}`;
        bindings.push(doc.metadata!.name);
      } else if (doc.kind !== 'ClusterRole') {
        doc.metadata!.namespace = system;
      }
      await applyManifests(admin, JSON.stringify(doc));
    }
  }
  return bindings;
}

/** A kubeconfig file acting as `component`'s ServiceAccount, with a bound token, as in its pod. */
async function kubeconfigFor(admin: KubeConfig, system: string, component: Component, dir: string): Promise<string> {
  const kc = await serviceAccountConfig(admin, system, SERVICE_ACCOUNTS[component]);
  const path = join(dir, `${component}.kubeconfig`);
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
  return path;
}

function startProcess(dir: string, name: string, bin: string, args: string[], env: Record<string, string>, port: number): KnativeProcess {
  const logFile = join(dir, `${name}.log`);
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(bin, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  return new KnativeProcess(name, child, logFile, port);
}

/** Waits for `probe`, failing early (with the log) if the process exits. */
async function until(p: KnativeProcess, what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!p.running()) throw new Error(`${p.name} exited (${p.child.exitCode}) while waiting for ${what}:\n${p.log().slice(-4000)}`);
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${p.log().slice(-4000)}`);
}

/** Answers at all: any HTTP status means the server listens. */
async function answers(url: string): Promise<boolean> {
  const res = await fetch(url, { method: 'POST', body: '', signal: AbortSignal.timeout(2_000) });
  await res.arrayBuffer();
  return true;
}

/**
 * Starts the chosen components against the test control plane. The dispatcher's fixed ports are
 * taken under a machine-wide lock, so test runs in parallel wait for each other rather than fail.
 */
export async function startKnative(admin: KubeConfig, opts: PlaneOptions): Promise<KnativePlane> {
  const { binaries, dir: cache } = await ensureKnative();
  const addedCrds = await installCrds(admin, cache);
  const system = await createNamespace(admin, 'kn-system');
  await applyConfigMaps(admin, cache, system, opts.features ?? {});
  const clusterBindings = await applyRbac(admin, cache, system, 'roles');
  const names = await new ClusterNames().start();
  // In a pod, kubernetes.default.svc is the API server: Knative's OIDC verifiers read its issuer there.
  names.tunnel('kubernetes.default.svc:443', Number(new URL(admin.getCurrentCluster()!.server).port));
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-knative-'));
  const base = { SYSTEM_NAMESPACE: system, NAMESPACE: system, ...names.env() };
  const procs: KnativeProcess[] = [];
  const releases: Array<() => void> = [];
  // Last resort when the test process exits without stop(): kill what this plane started, by PID.
  const killOnExit = () => {
    for (const p of procs) if (p.running()) p.child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const filterUrl = ClusterNames.url('broker-filter', system);
  const ingressUrl = ClusterNames.url('broker-ingress', system);

  const plane: KnativePlane = {
    admin,
    system,
    names,
    binaries,
    filterUrl,
    ingressUrl,
    async setFeatures(flags) {
      const core = admin.makeApiClient(CoreV1Api);
      const cm = await core.readNamespacedConfigMap({ name: 'config-features', namespace: system });
      cm.data = { ...cm.data, ...flags };
      await core.replaceNamespacedConfigMap({ name: 'config-features', namespace: system, body: cm });
    },
    tails(lines = 12) {
      const short = (l: string) => (l.length > 400 ? `${l.slice(0, 400)}…` : l);
      return procs.map((p) => `--- ${p.name} (whole log: ${p.logFile}) ---\n${p.log().trimEnd().split('\n').slice(-lines).map(short).join('\n')}`).join('\n');
    },
    async stop() {
      process.removeListener('exit', killOnExit);
      for (const p of [...procs].reverse()) await p.stop();
      for (const release of releases) release();
      await names.stop();
      const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
      for (const name of clusterBindings) await rbac.deleteClusterRoleBinding({ name }).catch(() => undefined);
      await deleteNamespace(admin, system);
      await removeCrds(admin, addedCrds);
      if (!process.env['JOB_ROBOT_KEEP_CLUSTER_DIR']) rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    if (opts.components.includes('ingress')) {
      // Its ports are settable (INGRESS_PORT, INGRESS_PORT_HTTPS): free ones, no lock.
      const [port, https, profiling] = await Promise.all([freePort(), freePort(), freePort()]);
      const ingress = startProcess(dir, 'broker-ingress', binaries['broker-ingress'], [`--kubeconfig=${await kubeconfigFor(admin, system, 'ingress', dir)}`], {
        ...base,
        POD_NAME: 'mt-broker-ingress-0',
        CONTAINER_NAME: 'ingress',
        CONFIG_LOGGING_NAME: 'config-logging',
        CONFIG_OBSERVABILITY_NAME: 'config-observability',
        METRICS_DOMAIN: 'knative.dev/internal/eventing',
        INGRESS_PORT: String(port),
        INGRESS_PORT_HTTPS: String(https),
        PROFILING_PORT: String(profiling),
      }, port);
      procs.push(ingress);
      plane.ingress = ingress;
      names.set(new URL(ingressUrl).hostname, port);
      // It listens once its informers have synced; `/` names no Broker and is answered 404.
      await until(ingress, 'the broker ingress to serve', () => answers(`http://127.0.0.1:${port}/`));
    }
    if (opts.components.includes('filter')) {
      const [port, https, profiling] = await Promise.all([freePort(), freePort(), freePort()]);
      const filter = startProcess(dir, 'broker-filter', binaries['broker-filter'], [`--kubeconfig=${await kubeconfigFor(admin, system, 'filter', dir)}`], {
        ...base,
        POD_NAME: 'broker-filter-0',
        CONTAINER_NAME: 'filter',
        FILTER_PORT: String(port),
        FILTER_PORT_HTTPS: String(https),
        PROFILING_PORT: String(profiling),
      }, port);
      procs.push(filter);
      plane.filter = filter;
      names.set(new URL(filterUrl).hostname, port);
      // A path that names no Trigger answers 400 once the informers have synced and it serves.
      await until(filter, 'the broker filter to serve', () => answers(`http://127.0.0.1:${port}/`));
    }
    // The dispatcher serves on 8080 and 8443, and the PingSource adapter its probes on 8080:
    // constants in Knative's code. Planes on one machine take turns.
    if (opts.components.includes('dispatcher') || opts.components.includes('mtping')) {
      releases.push(
        await lockFile(join(tmpdir(), 'job-robot-knative-ports.lock'), (holder) =>
          process.stderr.write(`[knative] waiting for process ${holder}, whose Knative plane holds ports ${DISPATCHER_PORTS.join(' and ')}\n`),
        ),
      );
    }
    if (opts.components.includes('dispatcher')) {
      for (const port of DISPATCHER_PORTS) {
        if (!(await isPortFree(port))) {
          throw new Error(`port ${port} is taken by another program: Knative's in-memory channel dispatcher listens on ${DISPATCHER_PORTS.join(' and ')} (constants in its code)`);
        }
      }
      const profiling = await freePort();
      const dispatcher = startProcess(dir, 'imc-dispatcher', binaries['imc-dispatcher'], [`--kubeconfig=${await kubeconfigFor(admin, system, 'dispatcher', dir)}`, '--disable-ha'], {
        ...base,
        // Empty, as installed: the dispatcher serves channels in every namespace.
        NAMESPACE: '',
        POD_NAME: 'imc-dispatcher-0',
        CONTAINER_NAME: 'dispatcher',
        MAX_IDLE_CONNS: '1000',
        MAX_IDLE_CONNS_PER_HOST: '1000',
        PROFILING_PORT: String(profiling),
      }, DISPATCHER_PORTS[0]);
      procs.push(dispatcher);
      plane.dispatcher = dispatcher;
      await until(dispatcher, 'the in-memory channel dispatcher to serve', () => answers(`http://127.0.0.1:${DISPATCHER_PORTS[0]}/`));
    }
    if (opts.components.includes('mtping')) {
      const profiling = await freePort();
      const mtping = startProcess(dir, 'mtping', binaries.mtping, [`--kubeconfig=${await kubeconfigFor(admin, system, 'mtping', dir)}`], {
        ...base,
        POD_NAME: 'pingsource-mt-adapter-0',
        K_OBSERVABILITY_CONFIG: '{}',
        K_LOGGING_CONFIG: '',
        K_LEADER_ELECTION_CONFIG: '',
        K_NO_SHUTDOWN_AFTER: '',
        K_SINK_TIMEOUT: '-1',
        PROFILING_PORT: String(profiling),
      }, 0);
      procs.push(mtping);
      plane.mtping = mtping;
      await until(mtping, 'the PingSource adapter to start its runner', async () => /Starting job runner/.test(mtping.log()));
    }
  } catch (err) {
    await plane.stop().catch(() => undefined);
    throw err;
  }
  return plane;
}

/**
 * Skips the calling suite when the tests run against an external cluster (TEST_KUBECONFIG): there
 * the plane's dispatcher and PingSource adapter would act on that cluster's own channels and
 * PingSources, and its CRDs would replace the cluster's. Call first in `before`.
 */
export function privateControlPlaneOnly(ctx: Mocha.Context): void {
  if (!process.env['TEST_KUBECONFIG']) return;
  process.stderr.write("    skipped: TEST_KUBECONFIG names an external cluster, where Knative's data plane from the tests would act on the cluster's own Knative objects\n");
  ctx.skip();
}
