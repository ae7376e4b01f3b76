/**
 * A real, private Kubernetes control plane for tests and the local stack: etcd, kube-apiserver with
 * RBAC and the TokenRequest API, and kube-controller-manager running the job, garbage-collector,
 * ttl-after-finished, namespace and serviceaccount controllers (and the admission-policy status
 * controller, which type-checks ValidatingAdmissionPolicies). No kubelet: pods never run, and
 * test/helpers/pods.ts completes them instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_PLANE, ensureBinaries, type Binaries } from './build.ts';
import { freePort } from './ports.ts';

export interface ControlPlane {
  /** https URL of the kube-apiserver. */
  server: string;
  /** Admin (system:masters) kubeconfig file. */
  kubeconfig: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  caData: string;
  /** Folder holding data, certificates and the processes' logs. */
  dir: string;
  /** etcd's client URL (its JSON gateway answers POST /v3/kv/compaction, for expiring continue tokens). */
  etcdUrl: string;
  /** Restarts kube-apiserver on the same port (for fault tests). */
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
}

const log = (msg: string) => process.stderr.write(`[control-plane] ${msg}\n`);

interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

function start(name: string, bin: string, args: string[], dir: string): Proc {
  const out = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { name, child, exited };
}

async function stopProc(p: Proc, graceMs = 10_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

async function waitFor(what: string, probe: () => Promise<boolean>, procs: Proc[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`${dead.name} exited with ${dead.child.exitCode} while waiting for ${what}`);
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function httpOk(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.ok;
}

function kubeconfigYaml(server: string, caData: string, token: string): string {
  const ca = Buffer.from(caData).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: job-robot-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: admin@job-robot-test',
    '  context: {cluster: job-robot-test, user: admin, namespace: default}',
    'current-context: admin@job-robot-test',
    '',
  ].join('\n');
}

/** Starts the control plane in a fresh temporary folder; resolves once kube-apiserver is ready. */
export async function startControlPlane(opts: { binaries?: Pick<Binaries, 'etcd' | 'kube-apiserver' | 'kube-controller-manager'> } = {}): Promise<ControlPlane> {
  const t0 = Date.now();
  const bins = opts.binaries ?? (await ensureBinaries(CONTROL_PLANE));
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-cp-'));
  const [etcdPort, etcdPeerPort, apiPort, kcmPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);

  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const saKey = join(dir, 'sa.key');
  const saPub = join(dir, 'sa.pub');
  writeFileSync(saKey, privateKey, { mode: 0o600 });
  writeFileSync(saPub, publicKey);
  const token = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin,system:masters\n`, { mode: 0o600 });

  const procs: Proc[] = [];
  // Last resort when the owning process exits without stop() (an uncaught error, process.exit):
  // kill what it started, by PID, so no etcd or API server outlives it.
  const killOnExit = () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const stopAll = async () => {
    process.removeListener('exit', killOnExit);
    for (const p of [...procs].reverse()) await stopProc(p);
  };
  try {
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = start(
      'etcd',
      bins.etcd,
      [
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      dir,
    );
    procs.push(etcd);
    await waitFor('etcd', () => httpOk(`${etcdUrl}/health`), procs, 30_000);

    const certDir = join(dir, 'pki');
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=127.0.0.1`,
      `--advertise-address=127.0.0.1`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${certDir}`,
      '--authorization-mode=RBAC',
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      // On by default since 1.30 (GA); named so the admission-policy tests never run without it.
      '--enable-admission-plugins=ValidatingAdmissionPolicy',
      '--enable-priority-and-fairness=false',
      '--v=1',
    ];
    let api: Proc = start('kube-apiserver', bins['kube-apiserver'], apiArgs, dir);
    procs.push(api);
    const server = `https://127.0.0.1:${apiPort}`;
    const auth = { authorization: `Bearer ${token}` };
    const waitReady = () =>
      waitFor('kube-apiserver /readyz', () => readyz(server, certDir, auth), procs, 90_000);
    await waitReady();
    const caData = readFileSync(join(certDir, 'apiserver.crt'), 'utf8');
    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(server, caData, token), { mode: 0o600 });

    const kcm = start(
      'kube-controller-manager',
      bins['kube-controller-manager'],
      [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
        `--cert-dir=${join(dir, 'kcm-pki')}`,
        '--controllers=job-controller,garbage-collector-controller,ttl-after-finished-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller,validatingadmissionpolicy-status-controller',
        `--service-account-private-key-file=${saKey}`,
        `--root-ca-file=${join(certDir, 'apiserver.crt')}`,
        '--use-service-account-credentials=false',
        '--concurrent-job-syncs=10',
        '--concurrent-gc-syncs=10',
        '--kube-api-qps=200',
        '--kube-api-burst=400',
        '--v=1',
      ],
      dir,
    );
    procs.push(kcm);
    log(`ready in ${Date.now() - t0} ms: ${server} (kubeconfig ${kubeconfig}, logs in ${dir})`);

    return {
      server,
      kubeconfig,
      caData,
      dir,
      etcdUrl,
      async restartApiServer() {
        const index = procs.indexOf(api);
        await stopProc(api);
        api = start('kube-apiserver', bins['kube-apiserver'], apiArgs, dir);
        procs[index] = api;
        await waitReady();
      },
      async stop() {
        await stopAll();
        if (!process.env['JOB_ROBOT_KEEP_CLUSTER_DIR']) rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopAll();
    const logs = procs.map((p) => `--- ${p.name}.log (tail) ---\n${tail(join(dir, `${p.name}.log`))}`).join('\n');
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
}

async function readyz(server: string, certDir: string, headers: Record<string, string>): Promise<boolean> {
  let ca: string;
  try {
    ca = readFileSync(join(certDir, 'apiserver.crt'), 'utf8');
  } catch {
    return false;
  }
  const { request } = await import('node:https');
  return new Promise((resolve) => {
    const req = request(`${server}/readyz`, { ca, headers, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
