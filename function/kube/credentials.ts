/**
 * How a function reaches the API server: the server's URL, the TLS settings and the Authorization
 * header, read the way a pod meets them. Without @kubernetes/client-node: loading that client and
 * its HTTP stack costs a scale-to-zero function about 140 ms of CPU at every cold start.
 *
 * Two sources, as client-go reads them:
 * - `KUBECONFIG` (or ~/.kube/config outside a pod): the current context's cluster and user. A user
 *   may hold a token, a token file, a client certificate and key, or a username and password.
 *   Exec plugins and auth providers are not run: the start fails and says to use a token or the
 *   in-cluster ServiceAccount (the operator commands, `doctor` and `status`, run them).
 * - In a pod: KUBERNETES_SERVICE_HOST/PORT, and the ServiceAccount's token, CA and namespace under
 *   /var/run/secrets/kubernetes.io/serviceaccount. The kubelet rotates the token file; it is read
 *   again once a minute, as client-go does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../config/base.ts';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How often a token file is read again. */
const TOKEN_FILE_REREAD_MS = 60_000;

export interface TlsSettings {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

export interface Credentials {
  /** The API server's base URL, without a trailing slash. */
  server: string;
  tls: TlsSettings;
  /** The namespace of the context, or the pod's. */
  namespace?: string;
  /** The Authorization header to send now; undefined for none (client certificates alone). */
  authorization(): string | undefined | Promise<string | undefined>;
}

/**
 * The namespace to work in: explicit config, then the pod's own namespace, then the credentials'
 * context's, then `default`.
 */
export function namespaceOf(configured: string | undefined, creds?: Pick<Credentials, 'namespace'>): string {
  if (configured) return configured;
  const fromPod = readOptional(join(SERVICE_ACCOUNT_DIR, 'namespace'))?.toString('utf8').trim();
  return fromPod || creds?.namespace || 'default';
}

/** A kubeconfig that cannot be used, with the reason. */
export class CredentialsError extends Error {
  override name = 'CredentialsError';
}

/**
 * The credentials a component starts with: `KUBECONFIG` when set, the pod's ServiceAccount in a
 * pod, else ~/.kube/config. A failure is a ConfigError naming `source`.
 */
export function credentialsAtStart(path = process.env['KUBECONFIG'], source = 'KUBECONFIG'): Credentials {
  try {
    if (path) return kubeconfigCredentials(path);
    if (process.env['KUBERNETES_SERVICE_HOST']) return inClusterCredentials();
    const home = join(homedir(), '.kube', 'config');
    if (existsSync(home)) return kubeconfigCredentials(home);
    throw new CredentialsError('no KUBECONFIG, not in a pod (no KUBERNETES_SERVICE_HOST), and no ~/.kube/config');
  } catch (err) {
    throw new ConfigError(`${source}: cannot load ${path ?? 'the in-cluster credentials'}: ${(err as Error).message}`, [source]);
  }
}

/**
 * The pod's ServiceAccount credentials (`dir`: where the token, CA and namespace files are; `now`:
 * the clock that says when the token file is read again).
 */
export function inClusterCredentials(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR, now: () => number = Date.now): Credentials {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port) throw new CredentialsError('KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set');
  const token = tokenFile(join(dir, 'token'), now);
  const namespace = readOptional(join(dir, 'namespace'))?.toString('utf8').trim();
  return {
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    tls: { ca: readFileSync(join(dir, 'ca.crt')), rejectUnauthorized: true },
    ...(namespace ? { namespace } : {}),
    authorization: () => `Bearer ${token()}`,
  };
}

/** The current context of the kubeconfig file at `path`. */
export function kubeconfigCredentials(path: string): Credentials {
  return credentialsFromKubeconfig(readFileSync(path, 'utf8'), dirname(path));
}

/** The current context of a kubeconfig's text; relative file paths resolve against `baseDir`. */
export function credentialsFromKubeconfig(text: string, baseDir: string): Credentials {
  const doc = (parse(text) ?? {}) as Record<string, unknown>;
  const contextName = str(doc['current-context']);
  if (!contextName) throw new CredentialsError('it names no current-context');
  const context = entry(doc, 'contexts', 'context', contextName);
  const cluster = entry(doc, 'clusters', 'cluster', str(context['cluster']) ?? '');
  const userName = str(context['user']);
  const user = userName ? entry(doc, 'users', 'user', userName) : {};
  const file = (p: string) => readFileSync(isAbsolute(p) ? p : join(baseDir, p));

  const server = str(cluster['server']);
  if (!server) throw new CredentialsError(`cluster ${str(context['cluster'])} has no server`);
  if (cluster['proxy-url']) throw new CredentialsError(`cluster ${str(context['cluster'])} sets proxy-url, which job-robot's functions do not use`);
  for (const plugin of ['exec', 'auth-provider']) {
    if (user[plugin]) {
      throw new CredentialsError(
        `user ${userName} authenticates through ${plugin === 'exec' ? 'an exec plugin' : 'an auth provider'}, which job-robot's functions do not run: give them a token, a token file or a client certificate (in a cluster they use their ServiceAccount)`,
      );
    }
  }
  const tls: TlsSettings = { rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true };
  const ca = bytes(cluster, 'certificate-authority', file);
  const cert = bytes(user, 'client-certificate', file);
  const key = bytes(user, 'client-key', file);
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  const servername = str(cluster['tls-server-name']);
  if (servername) tls.servername = servername;

  const namespace = str(context['namespace']);
  return { server: server.replace(/\/+$/, ''), tls, ...(namespace ? { namespace } : {}), authorization: authorizationOf(user, baseDir) };
}

function authorizationOf(user: Record<string, unknown>, baseDir: string): () => string | undefined {
  const token = str(user['token']);
  if (token) return () => `Bearer ${token}`;
  const path = str(user['tokenFile']);
  if (path) {
    const read = tokenFile(isAbsolute(path) ? path : join(baseDir, path), Date.now);
    return () => `Bearer ${read()}`;
  }
  const username = str(user['username']);
  if (username) {
    const basic = `Basic ${Buffer.from(`${username}:${str(user['password']) ?? ''}`).toString('base64')}`;
    return () => basic;
  }
  return () => undefined;
}

/** A token file's content, read at once (a missing file fails the start) and again once a minute. */
function tokenFile(path: string, now: () => number): () => string {
  let token = readToken(path);
  let readAt = now();
  return () => {
    if (now() - readAt >= TOKEN_FILE_REREAD_MS) {
      readAt = now();
      try {
        token = readToken(path);
      } catch {
        // A file being replaced: keep the token read last.
      }
    }
    return token;
  };
}

function readToken(path: string): string {
  const token = readFileSync(path, 'utf8').trim();
  if (!token) throw new CredentialsError(`the token file ${path} is empty`);
  return token;
}

function readOptional(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** `<field>-data` (base64) or `<field>` (a file) of a kubeconfig cluster or user. */
function bytes(obj: Record<string, unknown>, field: string, file: (p: string) => Buffer): Buffer | undefined {
  const data = str(obj[`${field}-data`]);
  if (data) return Buffer.from(data, 'base64');
  const path = str(obj[field]);
  return path ? file(path) : undefined;
}

/** The `inner` object of the entry named `name` in the list `list` (clusters, users, contexts). */
function entry(doc: Record<string, unknown>, list: string, inner: string, name: string): Record<string, unknown> {
  const items = Array.isArray(doc[list]) ? (doc[list] as Array<Record<string, unknown> | null>) : [];
  const found = items.find((i) => i?.name === name);
  if (!found) throw new CredentialsError(`no ${inner} named ${JSON.stringify(name)} in ${list}`);
  const value = found[inner];
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
