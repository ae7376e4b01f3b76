/**
 * The results function for tests: in-process on a free local port (as `job-robot results` wires
 * it) or as a child process (`node function/cli.ts results`); the events a Knative ApiServerSource
 * in Resource mode sends, built the way its adapter builds them (knative.dev/eventing
 * pkg/adapter/apiserver/events, makeEvent); and a Job as the API server serves it, raw JSON.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { request, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { SenderAuth } from '../../function/auth/gate.ts';
import { APISERVER_ADD_TYPE, APISERVER_DELETE_TYPE, APISERVER_UPDATE_TYPE, DEFAULT_INSTANCE_MARK } from '../../function/events.ts';
import { Health } from '../../function/http/health.ts';
import { listen } from '../../function/http/server.ts';
import { connect, type RedisClient } from '../../function/queue/connection.ts';
import { parseResult, Results, type ResultRecord } from '../../function/queue/results.ts';
import { resultsApp } from '../../function/results/app.ts';
import { loadResultsConfig, type ResultsConfig } from '../../function/results/config.ts';
import type { Change } from '../../function/results/job-event.ts';
import { ResultsMetrics } from '../../function/results/metrics.ts';
import { LogCapture } from './launcher.ts';
import { ROOT } from './paths.ts';
import { uniquePrefix } from './redis.ts';
import { stopChild } from './child.ts';
import { restOf } from '../../function/kube/client.ts';

export interface ResultsUnderTest {
  url: string;
  client: RedisClient;
  results: Results;
  config: ResultsConfig;
  registry: Registry;
  logs: LogCapture;
  /** The results stream's entries, oldest first, as field maps. */
  stream(): Promise<Array<Record<string, string>>>;
  record(id: string): Promise<ResultRecord | undefined>;
  close(): Promise<void>;
}

/**
 * Starts the results function's app as `job-robot results` would, on a unique queue key, with `env`
 * on top of the defaults (sender authentication off unless `env` turns it on; then `kc` reads the
 * issuer's keys). `client` replaces the Redis connection (a Redis that is away).
 */
export async function startResults(redisUrl: string, env: Record<string, string> = {}, opts: { kc?: KubeConfig; client?: RedisClient; redisWaitMs?: number } = {}): Promise<ResultsUnderTest> {
  const config = loadResultsConfig({ REDIS_URL: `${redisUrl}/0`, QUEUE_KEY: `${uniquePrefix('results')}queue`, OIDC_AUTHENTICATION: 'disabled', ...env });
  const client = opts.client ?? connect(config.redis, 'test-results');
  if (!opts.client) await client.ping();
  const registry = new Registry();
  const logs = new LogCapture();
  const rest = opts.kc ? restOf(opts.kc, 10_000) : undefined;
  const auth = SenderAuth.from(config.auth, { rest, namespace: config.namespace ?? 'default', log: logs.logger, registry });
  const results = new Results(client, config.keys, config.results);
  const app = resultsApp({
    senders: auth.senders(),
    client,
    results,
    instance: config.instance,
    mark: config.instance ?? DEFAULT_INSTANCE_MARK,
    health: new Health(),
    registry,
    metrics: new ResultsMetrics(registry),
    log: logs.logger,
    maxRequestBytes: config.maxRequestBytes,
    ...(opts.redisWaitMs ? { redisWaitMs: opts.redisWaitMs } : {}),
  });
  const server = await listen(app, 0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${server.port}/`,
    client,
    results,
    config,
    registry,
    logs,
    async stream() {
      const entries = await client.xrange(config.keys.results, '-', '+');
      return entries.map(([, fields]) => Object.fromEntries(fields.flatMap((v, i) => (i % 2 ? [] : [[v, fields[i + 1]!]]))) as Record<string, string>);
    },
    async record(id: string) {
      return parseResult(await client.hgetall(config.keys.result(id)));
    },
    async close() {
      await server.close(1000);
      rest?.close();
      if (!opts.client) client.disconnect();
    },
  };
}

const TYPES: Record<Change, string> = { add: APISERVER_ADD_TYPE, update: APISERVER_UPDATE_TYPE, delete: APISERVER_DELETE_TYPE };

/** The Kubernetes object an event carries, as JSON. */
export type RawObject = Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: Record<string, unknown> & { name?: string; namespace?: string } };

export interface ApiServerEventOptions {
  /** The API server's address: the adapter's event source. */
  source?: string;
  /** The ApiServerSource's ceOverrides extensions; default `jobrobot: job-robot`, as config/results.yaml. */
  extensions?: Record<string, string>;
  /** `structured` sends application/cloudevents+json (the adapter sends binary). */
  mode?: 'binary' | 'structured';
  /** A fixed id (a redelivery repeats the id it was first sent with); default a new UUID, as the adapter's. */
  id?: string;
}

/** The plural the adapter's createSelfLink guesses for a kind (meta.UnsafeGuessKindToResource). */
const plural = (kind: string) => {
  const k = kind.toLowerCase();
  return k.endsWith('s') ? `${k}es` : k.endsWith('y') ? `${k.slice(0, -1)}ies` : `${k}s`;
};

/** The attributes the adapter's makeEvent sets for `object`, with the ApiServerSource's extensions. */
export function apiServerAttributes(change: Change, object: RawObject, opts: ApiServerEventOptions = {}): Record<string, string> {
  const apiVersion = object.apiVersion ?? '';
  const kind = object.kind ?? '';
  const name = object.metadata?.name ?? '';
  const namespace = object.metadata?.namespace ?? '';
  return {
    specversion: '1.0',
    id: opts.id ?? randomUUID(),
    source: opts.source ?? 'https://10.96.0.1:443',
    type: TYPES[change],
    subject: `/apis/${apiVersion}/namespaces/${namespace}/${plural(kind)}/${name}`,
    kind,
    apiversion: apiVersion,
    name,
    namespace,
    ...(opts.extensions ?? { jobrobot: DEFAULT_INSTANCE_MARK }),
  };
}

/** POSTs the event an ApiServerSource sends (through the Broker) when `object` was added, updated or deleted. */
export function postApiServerEvent(url: string, change: Change, object: RawObject, opts: ApiServerEventOptions = {}): Promise<Response> {
  const attributes = apiServerAttributes(change, object, opts);
  if (opts.mode === 'structured') {
    return fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({ ...attributes, datacontenttype: 'application/json', data: object }),
    });
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [k, v] of Object.entries(attributes)) headers[`ce-${k}`] = v;
  return fetch(url, { method: 'POST', headers, body: JSON.stringify(object) });
}

/** A Job as the API server serves it: the raw JSON of a GET (what a watch hands the adapter). */
export async function rawJob(kc: KubeConfig, namespace: string, name: string): Promise<RawObject> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(`/apis/batch/v1/namespaces/${namespace}/jobs/${name}`, cluster.server);
  const opts: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`GET ${url.pathname}: ${res.statusCode} ${text}`));
        else resolve(JSON.parse(text) as RawObject);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of `metric` with `labels` in the registry, or 0. */
export async function metricValue(registry: Registry, metric: string, labels: Record<string, string> = {}): Promise<number> {
  const found = (await registry.getMetricsAsJSON()).find((m) => m.name === metric);
  const value = found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return Number(value?.value ?? 0);
}

export interface ChildResults {
  child: ChildProcess;
  url: string;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Spawns `node function/cli.ts results` with `env`; resolves once it logs that it listens (or, with `waitListening: false`, at once). */
export async function spawnResults(env: Record<string, string>, opts: { waitListening?: boolean } = {}): Promise<ChildResults> {
  const child = spawn(process.execPath, ['function/cli.ts', 'results'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', PORT: '0', LOG_LEVEL: 'info', OIDC_AUTHENTICATION: 'disabled', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let port = 0;
  if (opts.waitListening !== false) {
    const deadline = Date.now() + 20_000;
    while (!port) {
      const m = /"port":(\d+)[^\n]*results function listening/.exec(out);
      if (m) port = Number(m[1]);
      else if (child.exitCode !== null) throw new Error(`results exited ${child.exitCode}: ${out}`);
      else if (Date.now() > deadline) throw new Error(`results did not listen within 20 s: ${out}`);
      else await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    child,
    url: `http://127.0.0.1:${port}/`,
    output: () => out,
    exited,
    stop: () => stopChild(child, exited),
  };
}
