/**
 * Builds the test's Go programs from the modules pinned under test/cluster/ into cache folders
 * outside the repository, keyed by version, and reuses them:
 * - the control plane (etcd, kube-apiserver, kube-controller-manager, and kubectl for rendering
 *   config/ with kustomize and for people) from test/cluster/{k8s,etcd}/go.mod;
 * - Knative Eventing's data plane (the broker ingress and filter, the in-memory channel's
 *   dispatcher, the PingSource adapter) from test/cluster/knative/go.mod, with the CRDs and ConfigMaps of the same
 *   Eventing release beside them;
 * - Knative Serving's queue-proxy from test/cluster/serving/go.mod (`serving`);
 * - Knative Eventing's JobSink receiver from test/cluster/knative/go.mod, with the CRDs,
 *   ConfigMaps and roles it reads, from the same release (`jobsink`);
 * - Knative Eventing's ApiServerSource receive adapter from test/cluster/knative/go.mod, with the
 *   release's config-logging it is configured from (`apiserversource`).
 * Run directly: `node test/cluster/build.ts [control-plane] [knative] [serving] [jobsink] [apiserversource]`
 * (default: control-plane).
 * Prints each folder on its own line, last.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { lockFile } from './lock.ts';
import { cacheDir, etcdVersion, eventingVersion, jobSinkCacheDir, kubernetesVersion, knativeCacheDir, servingCacheDir, servingVersion } from './versions.ts';

const here = import.meta.dirname;

/** Where one binary comes from: a Go package built inside one of the modules under test/cluster/. */
interface Source {
  module: string;
  pkg: string;
  /** Linker flags besides -s -w (version stamps). */
  ldflags?: string;
}

/** A set of binaries built together into one cache folder. */
interface BinarySet<B extends string> {
  /** Log prefix. */
  label: string;
  /** The cache folder (read each time: JOB_ROBOT_CACHE may change it). */
  dir(): string;
  sources: Record<B, Source>;
  /** What is built, with versions, for the log and the folder's VERSIONS file. */
  versions: string[];
  /** A line telling how long a cold build takes. */
  coldNote: string;
  /** An environment variable naming a folder to look in first (the envtest convention). */
  assetsEnv?: string;
  /** Files besides the binaries the folder must hold, and how to put them into the staging folder. */
  extras?: { names: readonly string[]; make(staging: string): Promise<void> };
}

function goBuild(moduleDir: string, out: string, pkg: string, ldflags = ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', ['build', '-trimpath', `-ldflags=-s -w ${ldflags}`.trim(), '-o', out, pkg], {
      cwd: join(here, moduleDir),
      env: goEnv(),
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', (err) =>
      reject(new Error(`cannot run 'go' (${err.message}); install Go 1.25+ or set KUBEBUILDER_ASSETS`)),
    );
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`go build in ${moduleDir} exited ${code}`))));
  });
}

function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GOWORK: 'off', CGO_ENABLED: '0', GOFLAGS: '-mod=readonly', GOTOOLCHAIN: 'local' };
}

/** The folder a module's dependency was downloaded to (after a build, it is in the module cache). */
async function moduleDir(moduleFolder: string, dependency: string): Promise<string> {
  const { stdout } = await promisify(execFile)('go', ['list', '-m', '-f', '{{.Dir}}', dependency], { cwd: join(here, moduleFolder), env: goEnv() });
  const dir = stdout.trim();
  if (!dir || !existsSync(dir)) throw new Error(`go list found no folder for ${dependency} in test/cluster/${moduleFolder}`);
  return dir;
}

function logger(set: BinarySet<string>): (msg: string) => void {
  return (msg) => process.stderr.write(`[${set.label}] ${msg}\n`);
}

/** The VERSIONS file the set writes into its folder. */
const versionsFile = (set: BinarySet<string>) => set.versions.map((v) => `${v}\n`).join('');

/** Whether the cache folder was built as the set now builds (a folder from other build flags is rebuilt). */
function cacheCurrent(set: BinarySet<string>): boolean {
  try {
    return readFileSync(join(set.dir(), 'VERSIONS'), 'utf8') === versionsFile(set);
  } catch {
    return false;
  }
}

/** Where each of `wanted` is: the assets folder first (when the set has one), else the cache if current. */
function locate<B extends string>(set: BinarySet<B>, wanted: readonly B[]): { found: Partial<Record<B, string>>; missing: B[] } {
  const assets = set.assetsEnv ? process.env[set.assetsEnv] : undefined;
  const cache = cacheCurrent(set) ? set.dir() : undefined;
  const found: Partial<Record<B, string>> = {};
  const missing: B[] = [];
  for (const name of wanted) {
    const candidates = [assets && join(assets, name), cache && join(cache, name)].filter((p): p is string => !!p);
    const hit = candidates.find((p) => existsSync(p) && statSync(p).isFile());
    if (hit) found[name] = hit;
    else missing.push(name);
  }
  return { found, missing };
}

function extrasMissing(set: BinarySet<string>): boolean {
  return (set.extras?.names ?? []).some((name) => !existsSync(join(set.dir(), name)));
}

/** Returns the `wanted` binaries of `set`, building the missing ones (and the set's extras) into its cache first. */
async function ensure<B extends string>(set: BinarySet<B>, wanted: readonly B[]): Promise<Record<B, string>> {
  const cached = locate(set, wanted);
  if (cached.missing.length === 0 && !extrasMissing(set)) return cached.found as Record<B, string>;
  const cache = set.dir();
  mkdirSync(dirname(cache), { recursive: true });
  const unlock = await lockFile(`${cache}.lock`, (holder) => logger(set)(`waiting for the build in process ${holder} to finish`));
  try {
    return await build(set, wanted, cache);
  } finally {
    unlock();
  }
}

async function build<B extends string>(set: BinarySet<B>, wanted: readonly B[], cache: string): Promise<Record<B, string>> {
  const log = logger(set);
  // Another process may have built them while this one waited for the lock.
  const { found, missing: absent } = locate(set, wanted);
  const current = cacheCurrent(set);
  const extras = !current || extrasMissing(set) ? (set.extras?.names ?? []) : [];
  if (absent.length === 0 && extras.length === 0) return found as Record<B, string>;
  // A folder built otherwise (older flags, another version file) is rebuilt whole, so that the
  // VERSIONS written at the end is true of every binary in it.
  const missing = current ? absent : (Object.keys(set.sources) as B[]);
  if (!current && existsSync(join(cache, 'VERSIONS'))) log(`${cache} was built otherwise (VERSIONS differs): rebuilding it`);

  const staging = `${cache}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  log(`building ${[...missing, ...extras].join(', ')} (${set.versions.join(', ')}) into ${cache}`);
  log(set.coldNote);
  const started = Date.now();
  const heartbeat = setInterval(() => log(`still building... ${Math.round((Date.now() - started) / 1000)}s`), 30_000);
  try {
    for (const name of missing) {
      const { module, pkg } = set.sources[name];
      log(`go build ${pkg}`);
      await goBuild(module, join(staging, name), pkg, set.sources[name].ldflags);
    }
    if (extras.length) await set.extras!.make(staging);
    mkdirSync(cache, { recursive: true });
    for (const name of [...missing, ...extras]) {
      rmSync(join(cache, name), { recursive: true, force: true });
      renameSync(join(staging, name), join(cache, name));
    }
    writeFileSync(join(cache, 'VERSIONS'), versionsFile(set));
  } finally {
    clearInterval(heartbeat);
    rmSync(staging, { recursive: true, force: true });
  }
  log(`built in ${Math.round((Date.now() - started) / 1000)}s`);
  const after = locate(set, wanted);
  if (after.missing.length) throw new Error(`build finished but ${after.missing.join(', ')} missing`);
  return after.found as Record<B, string>;
}

// ---- the control plane ----

export const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const;
export type Binary = (typeof BINARIES)[number];
export type Binaries = Record<Binary, string>;

/** The binaries a control plane needs; kubectl is for the config tests and the commands `npm run dev` prints. */
export const CONTROL_PLANE: readonly Binary[] = ['etcd', 'kube-apiserver', 'kube-controller-manager'];

/**
 * The version Kubernetes' own build stamps into its binaries (hack/lib/version.sh); without it the
 * API server's /version reports `v0.0.0-master+$Format:%H$`, which clients that check the server's
 * version (Knative's controllers and dispatchers) refuse.
 */
function kubernetesStamp(): string {
  const [major, minor] = kubernetesVersion.replace(/^v/, '').split('.');
  return ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']
    .flatMap((pkg) => [`-X ${pkg}.gitVersion=${kubernetesVersion}`, `-X ${pkg}.gitMajor=${major}`, `-X ${pkg}.gitMinor=${minor}`, `-X ${pkg}.gitTreeState=clean`])
    .join(' ');
}

const controlPlaneSet: BinarySet<Binary> = {
  label: 'control-plane',
  dir: cacheDir,
  assetsEnv: 'KUBEBUILDER_ASSETS',
  sources: {
    etcd: { module: 'etcd', pkg: 'go.etcd.io/etcd/server/v3' },
    'kube-apiserver': { module: 'k8s', pkg: 'k8s.io/kubernetes/cmd/kube-apiserver', ldflags: kubernetesStamp() },
    'kube-controller-manager': { module: 'k8s', pkg: 'k8s.io/kubernetes/cmd/kube-controller-manager', ldflags: kubernetesStamp() },
    kubectl: { module: 'k8s', pkg: 'k8s.io/kubernetes/cmd/kubectl', ldflags: kubernetesStamp() },
  },
  versions: [`kubernetes ${kubernetesVersion} (version stamped)`, `etcd ${etcdVersion}`],
  coldNote: 'a cold build downloads the modules and compiles Kubernetes: about 8 minutes on 2 cores; later runs reuse it',
};

/** Where each control-plane binary comes from: KUBEBUILDER_ASSETS first (envtest convention), else the cache. */
export function locateBinaries(wanted: readonly Binary[] = BINARIES): { found: Partial<Binaries>; missing: Binary[] } {
  return locate(controlPlaneSet, wanted);
}

/** Returns the `wanted` control-plane binaries (default: all), building the missing ones into the cache first. */
export function ensureBinaries(wanted: readonly Binary[] = BINARIES): Promise<Binaries> {
  return ensure(controlPlaneSet, wanted);
}

// ---- Knative Eventing's data plane ----

export const KNATIVE_BINARIES = ['broker-ingress', 'broker-filter', 'imc-dispatcher', 'mtping'] as const;
export type KnativeBinary = (typeof KNATIVE_BINARIES)[number];
export type KnativeBinaries = Record<KnativeBinary, string>;

/** The CRDs the data plane's informers watch, from the same Eventing release (config/ in its module). */
const KNATIVE_CRDS = [
  'config/core/resources/broker.yaml',
  'config/core/resources/trigger.yaml',
  'config/core/resources/subscription.yaml',
  'config/core/resources/eventpolicy.yaml',
  'config/core/resources/eventtype.yaml',
  'config/core/resources/pingsource.yaml',
  'config/channels/in-memory-channel/resources/in-memory-channel.yaml',
];
/** The ConfigMaps Knative installs into its system namespace, as released. */
const KNATIVE_CONFIGMAPS = ['features', 'logging', 'observability', 'tracing', 'leader-election'].map((n) => `config/core/configmaps/${n}.yaml`);
/** The ServiceAccounts, roles and bindings of the four components, as released. */
const KNATIVE_ROLES = [
  ...['serviceaccount', 'serviceaccount-oidc', 'clusterrole', 'clusterrolebinding', 'role', 'rolebinding'].map((n) => `config/brokers/mt-channel-broker/roles/ingress-${n}.yaml`),
  ...['serviceaccount', 'clusterrole', 'clusterrolebinding', 'role', 'rolebinding'].map((n) => `config/brokers/mt-channel-broker/roles/filter-${n}.yaml`),
  'config/channels/in-memory-channel/200-imc-dispatcher-serviceaccount.yaml',
  'config/channels/in-memory-channel/roles/dispatcher-clusterrole.yaml',
  'config/core/200-pingsource-mt-adapter-serviceaccount.yaml',
  'config/core/roles/pingsource-mt-adapter-clusterrole.yaml',
];

/**
 * Knative Eventing's data plane: the broker ingress and filter, the in-memory channel's dispatcher
 * and the PingSource adapter. Their roles are in `roles/`. A cache folder holding `rbac/` instead
 * (the roles of all but the ingress) is completed in place: the ingress is built and `roles/`
 * written, and `rbac/` stays for checkouts that read it.
 */
const knativeSet: BinarySet<KnativeBinary> = {
  label: 'knative',
  dir: knativeCacheDir,
  sources: {
    'broker-ingress': { module: 'knative', pkg: 'knative.dev/eventing/cmd/broker/ingress' },
    'broker-filter': { module: 'knative', pkg: 'knative.dev/eventing/cmd/broker/filter' },
    'imc-dispatcher': { module: 'knative', pkg: 'knative.dev/eventing/cmd/in_memory/channel_dispatcher' },
    mtping: { module: 'knative', pkg: 'knative.dev/eventing/cmd/mtping' },
  },
  versions: [`knative.dev/eventing ${eventingVersion}`],
  coldNote: 'a cold build downloads the modules and compiles four Knative Eventing programs: up to 10 minutes on 2 cores; later runs reuse them',
  extras: {
    names: ['crds', 'configmaps', 'roles'],
    async make(staging) {
      const eventing = await moduleDir('knative', 'knative.dev/eventing');
      for (const [folder, files] of [['crds', KNATIVE_CRDS], ['configmaps', KNATIVE_CONFIGMAPS], ['roles', KNATIVE_ROLES]] as const) {
        mkdirSync(join(staging, folder));
        for (const file of files) cpSync(join(eventing, file), join(staging, folder, file.split('/').at(-1)!));
      }
    },
  },
};

/** The folder of Knative's data plane: the binaries, `crds/`, `configmaps/` and `roles/`; builds what is missing first. */
export async function ensureKnative(): Promise<{ binaries: KnativeBinaries; dir: string }> {
  const binaries = await ensure(knativeSet, KNATIVE_BINARIES);
  return { binaries, dir: knativeSet.dir() };
}

// ---- Knative Serving's queue-proxy ----

const servingSet: BinarySet<'queue-proxy'> = {
  label: 'serving',
  dir: servingCacheDir,
  sources: { 'queue-proxy': { module: 'serving', pkg: 'knative.dev/serving/cmd/queue' } },
  versions: [`knative.dev/serving ${servingVersion}`],
  coldNote: 'a cold build downloads the modules and compiles the queue-proxy: about 4.5 minutes of CPU (about 1 minute after the Knative Eventing set); later runs reuse it',
};

/** Knative Serving's queue-proxy (`cmd/queue`), building it into its cache folder first when missing. */
export async function ensureQueueProxy(): Promise<string> {
  return (await ensure(servingSet, ['queue-proxy']))['queue-proxy'];
}

// ---- Knative Eventing's JobSink receiver ----

/** What JobSink reads besides its binary, from the same Eventing release: CRDs its informers watch, ConfigMaps, its roles. */
const JOBSINK_FILES = {
  crds: ['config/core/resources/jobsink.yaml', 'config/core/resources/eventpolicy.yaml'],
  configmaps: ['features', 'logging', 'observability', 'tracing'].map((n) => `config/core/configmaps/${n}.yaml`),
  rbac: ['config/core/200-job-sink-serviceaccount.yaml', 'config/core/roles/job-sink-clusterrole.yaml'],
} as const;

const jobSinkSet: BinarySet<'jobsink'> = {
  label: 'jobsink',
  dir: jobSinkCacheDir,
  sources: { jobsink: { module: 'knative', pkg: 'knative.dev/eventing/cmd/jobsink' } },
  versions: [`knative.dev/eventing ${eventingVersion} (cmd/jobsink)`],
  coldNote: 'a cold build downloads the modules and compiles JobSink: about 9 minutes of CPU (under a minute after the Knative Eventing set); later runs reuse it',
  extras: {
    names: Object.keys(JOBSINK_FILES),
    async make(staging) {
      const eventing = await moduleDir('knative', 'knative.dev/eventing');
      for (const [folder, files] of Object.entries(JOBSINK_FILES)) {
        mkdirSync(join(staging, folder));
        for (const file of files) cpSync(join(eventing, file), join(staging, folder, file.split('/').at(-1)!));
      }
    },
  },
};

/** The folder of JobSink: the binary, `crds/`, `configmaps/` and `rbac/`; builds what is missing first. */
export async function ensureJobSink(): Promise<{ binary: string; dir: string }> {
  const { jobsink } = await ensure(jobSinkSet, ['jobsink']);
  return { binary: jobsink, dir: jobSinkSet.dir() };
}

// ---- Knative Eventing's ApiServerSource receive adapter ----

/**
 * What the ApiServerSource controller configures the adapter from, besides its binary: the
 * release's config-logging, which it passes on as K_LOGGING_CONFIG.
 */
const APISERVERSOURCE_FILES = { configmaps: ['config/core/configmaps/logging.yaml'] } as const;

/** `~/.cache/job-robot/knative-apiserversource-<eventing version>/`, beside the other Knative sets. */
export function apiServerSourceCacheDir(): string {
  return join(dirname(knativeCacheDir()), `knative-apiserversource-${eventingVersion}`);
}

const apiServerSourceSet: BinarySet<'apiserver-receive-adapter'> = {
  label: 'apiserversource',
  dir: apiServerSourceCacheDir,
  sources: { 'apiserver-receive-adapter': { module: 'knative', pkg: 'knative.dev/eventing/cmd/apiserver_receive_adapter' } },
  versions: [`knative.dev/eventing ${eventingVersion} (cmd/apiserver_receive_adapter)`],
  coldNote: 'a cold build downloads the modules and compiles the ApiServerSource adapter: about 5.5 minutes of CPU (seconds after the Knative Eventing set); later runs reuse it',
  extras: {
    names: Object.keys(APISERVERSOURCE_FILES),
    async make(staging) {
      const eventing = await moduleDir('knative', 'knative.dev/eventing');
      for (const [folder, files] of Object.entries(APISERVERSOURCE_FILES)) {
        mkdirSync(join(staging, folder));
        for (const file of files) cpSync(join(eventing, file), join(staging, folder, file.split('/').at(-1)!));
      }
    },
  },
};

/** The folder of the ApiServerSource adapter: the binary and `configmaps/`; builds what is missing first. */
export async function ensureApiServerSource(): Promise<{ binary: string; dir: string }> {
  const built = await ensure(apiServerSourceSet, ['apiserver-receive-adapter']);
  return { binary: built['apiserver-receive-adapter'], dir: apiServerSourceSet.dir() };
}

const SETS = ['control-plane', 'knative', 'serving', 'jobsink', 'apiserversource'];

if (import.meta.main) {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !SETS.includes(w));
  if (unknown.length) {
    process.stderr.write(`usage: node test/cluster/build.ts ${SETS.map((s) => `[${s}]`).join(' ')} (unknown: ${unknown.join(', ')})\n`);
    process.exit(2);
  }
  const folders: string[] = [];
  if (wanted.length === 0 || wanted.includes('control-plane')) {
    const bins = await ensureBinaries();
    for (const [name, path] of Object.entries(bins)) logger(controlPlaneSet)(`${name}: ${path}`);
    folders.push(cacheDir());
  }
  if (wanted.includes('knative')) {
    const { binaries, dir } = await ensureKnative();
    for (const [name, path] of Object.entries(binaries)) logger(knativeSet)(`${name}: ${path}`);
    folders.push(dir);
  }
  if (wanted.includes('serving')) {
    logger(servingSet)(`queue-proxy: ${await ensureQueueProxy()}`);
    folders.push(servingSet.dir());
  }
  if (wanted.includes('jobsink')) {
    const { binary, dir } = await ensureJobSink();
    logger(jobSinkSet)(`jobsink: ${binary}`);
    folders.push(dir);
  }
  if (wanted.includes('apiserversource')) {
    const { binary, dir } = await ensureApiServerSource();
    logger(apiServerSourceSet)(`apiserver-receive-adapter: ${binary}`);
    folders.push(dir);
  }
  process.stdout.write(folders.map((f) => `${f}\n`).join(''));
}
