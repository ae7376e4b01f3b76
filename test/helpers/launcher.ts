/**
 * The launcher for tests: in-process on port 0 as the job-robot ServiceAccount (config/rbac.yaml
 * applied into the test namespace), or as a child process (`node function/cli.ts launcher`), plus
 * CloudEvent senders and a log capture.
 */
import { encodeHeaderValue } from '../../function/http/cloudevent.ts';
import { kubeletExpand } from '../../function/kube/expansion.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { KubeConfig, V1Job } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { launcherSchema, type LauncherConfig } from '../../function/launcher/config.ts';
import { createLauncher, type LauncherParts } from '../../function/launcher/main.ts';
import { listen, type RunningServer } from '../../function/http/server.ts';
import { applyManifests, serviceAccountConfig } from './kube.ts';
import { readRepoFile, ROOT } from './paths.ts';
import { stopChild } from './child.ts';
import { restOf } from '../../function/kube/client.ts';

/** JSON log lines a logger wrote, parsed. */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly logger: Logger;

  constructor(level = 'debug') {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    this.logger = pino({ level, messageKey: 'message', formatters: { level: (label) => ({ level: label }) } }, sink);
  }

  find(pred: (line: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
    return this.lines.find(pred);
  }
}

/** Applies config/rbac.yaml into `namespace` and returns a client acting as the job-robot ServiceAccount. */
export async function asJobRobot(admin: KubeConfig, namespace: string): Promise<KubeConfig> {
  await applyManifests(admin, readRepoFile('config/rbac.yaml'), namespace);
  return serviceAccountConfig(admin, namespace, 'job-robot');
}

export interface TestLauncher {
  url: string;
  parts: LauncherParts;
  logs: LogCapture;
  config: LauncherConfig;
  close(): Promise<void>;
}

/** Starts a launcher in-process on 127.0.0.1:0 with `env` over the defaults; waits for the first round of start-up checks. */
export async function startLauncher(
  kc: KubeConfig,
  namespace: string,
  env: Record<string, string> = {},
  opts: { template?: V1Job; waitReady?: boolean; authClock?: () => Date } = {},
): Promise<TestLauncher> {
  const config = launcherSchema.parse({ NAMESPACE: namespace, LOG_LEVEL: 'debug', OIDC_AUTHENTICATION: 'disabled', ...env });
  const logs = new LogCapture();
  const parts = createLauncher(config, { rest: restOf(kc, config.kubeTimeoutSeconds * 1000), log: logs.logger, registry: new Registry(), ...(opts.template ? { template: opts.template } : {}), ...(opts.authClock ? { authClock: opts.authClock } : {}) });
  const running: RunningServer = await listen(parts.app, 0, '127.0.0.1');
  await parts.start();
  const url = `http://127.0.0.1:${running.port}`;
  if (opts.waitReady !== false) await waitReady(url);
  return {
    url,
    parts,
    logs,
    config,
    async close() {
      await running.close(1000);
      await parts.stop();
    },
  };
}

/** Waits until /health/readiness answers 200. */
export async function waitReady(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/health/readiness`);
      last = await res.text();
      if (res.ok) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`launcher at ${url} not ready after ${timeoutMs} ms: ${last}`);
}

export interface BinaryEvent {
  id: string;
  source?: string;
  type?: string;
  data?: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
}

export const TEST_TYPE = 'dev.job-robot.queue.item';

export { encodeHeaderValue };

/** POSTs a binary-mode CloudEvent; attribute values (also ce- entries of `headers`) are percent-encoded. */
export function postBinary(url: string, e: BinaryEvent, accept?: string): Promise<Response> {
  const extra = Object.fromEntries(Object.entries(e.headers ?? {}).map(([k, v]) => [k, k.startsWith('ce-') ? encodeHeaderValue(v) : v]));
  const headers: Record<string, string> = {
    'ce-specversion': '1.0',
    'ce-id': encodeHeaderValue(e.id),
    'ce-source': encodeHeaderValue(e.source ?? '/test'),
    'ce-type': encodeHeaderValue(e.type ?? TEST_TYPE),
    ...(e.contentType !== undefined ? { 'content-type': e.contentType } : { 'content-type': 'application/json' }),
    ...(accept ? { accept } : {}),
    ...extra,
  };
  return fetch(`${url}/`, { method: 'POST', headers, body: e.data === undefined ? '' : (e.data as RequestInit['body']) });
}

/** POSTs one structured-mode CloudEvent (an object) or a batch (an array). */
export function postStructured(url: string, body: unknown, accept?: string): Promise<Response> {
  const batch = Array.isArray(body);
  return fetch(`${url}/`, {
    method: 'POST',
    headers: {
      'content-type': batch ? 'application/cloudevents-batch+json' : 'application/cloudevents+json',
      ...(accept ? { accept } : {}),
    },
    body: JSON.stringify(body),
  });
}

/** A structured-mode event object with the test type. */
export const structured = (id: string, extra: Record<string, unknown> = {}) => ({ specversion: '1.0', id, source: '/test', type: TEST_TYPE, ...extra });

/** The environment variables of a Job's first container, by name. */
export function envOf(job: V1Job, container = 0): Record<string, string> {
  const c = job.spec!.template.spec!.containers[container]!;
  return Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']));
}

/** What a container process sees for an env value or arg: the kubelet's `$(VAR)` expansion. */
export { kubeletExpand };

export interface ChildLauncher {
  child: ChildProcess;
  url: string;
  port: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

/** Writes `kc` to a kubeconfig file for a child process; returns its path and a cleanup. */
export function kubeconfigFile(kc: KubeConfig): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'job-robot-kc-'));
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Spawns `node function/cli.ts launcher` (or `entry`, or Node's `args` ending with the entry) with
 * `env`; resolves once it logs that it listens (or exits).
 */
export async function spawnLauncher(env: Record<string, string>, opts: { waitListening?: boolean; entry?: string; args?: string[] } = {}): Promise<ChildLauncher> {
  const child = spawn(process.execPath, [...(opts.args ?? [opts.entry ?? 'function/cli.ts']), 'launcher'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', PORT: '0', LOG_LEVEL: 'debug', OIDC_AUTHENTICATION: 'disabled', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let port = 0;
  if (opts.waitListening !== false) {
    const deadline = Date.now() + 20_000;
    while (!port) {
      const m = /"port":(\d+)[^\n]*launcher listening/.exec(out);
      if (m) port = Number(m[1]);
      else if (child.exitCode !== null) throw new Error(`launcher exited ${child.exitCode}: ${err}${out}`);
      else if (Date.now() > deadline) throw new Error(`launcher did not listen within 20 s: ${err}${out}`);
      else await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    port,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: () => stopChild(child, exited),
  };
}
