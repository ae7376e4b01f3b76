/**
 * Test harness for the bridge: an HTTP sink in the test process that records every event, the
 * bridge as a child process (`node function/cli.ts bridge`) that tests can kill -9 or SIGTERM, and
 * condition waits with deadlines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { ROOT } from './paths.ts';

export interface Delivery {
  id: string;
  source: string;
  type: string;
  contentType: string;
  body: Buffer;
  headers: IncomingHttpHeaders;
  /** ms since epoch, from performance.timeOrigin + now(): comparable across processes. */
  at: number;
  status: number;
}

export type Answer = number | { status: number; headers?: Record<string, string>; body?: string };
export type Responder = (req: IncomingMessage, body: Buffer) => Answer | Promise<Answer>;

export const now = (): number => performance.timeOrigin + performance.now();

/** Waits until `condition` holds, checking every `everyMs`; fails with `what` at the deadline. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** An HTTP sink that records each request; `respond` decides the answer (default 202). */
export class RecordingSink {
  readonly deliveries: Delivery[] = [];
  respond: Responder = () => 202;
  private server: Server | undefined;
  private listeners = new Set<() => void>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Listens on `port` (0 = any free port). */
  async start(port = 0): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        void Promise.resolve(this.respond(req, body)).then((answer) => {
          const a = typeof answer === 'number' ? { status: answer } : answer;
          this.deliveries.push({
            id: String(req.headers['ce-id'] ?? ''),
            source: String(req.headers['ce-source'] ?? ''),
            type: String(req.headers['ce-type'] ?? ''),
            contentType: String(req.headers['content-type'] ?? ''),
            body,
            headers: req.headers,
            at: now(),
            status: a.status,
          });
          res.writeHead(a.status, a.headers ?? {}).end(a.body ?? '');
          for (const l of [...this.listeners]) l();
        });
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Accepted (2xx) deliveries. */
  accepted(): Delivery[] {
    return this.deliveries.filter((d) => d.status >= 200 && d.status < 300);
  }

  /** Distinct item bodies the sink accepted. */
  acceptedBodies(): Set<string> {
    return new Set(this.accepted().map((d) => d.body.toString('latin1')));
  }

  /** Resolves once `condition` holds after some delivery (checked at once too); fails at the deadline. */
  waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (sink saw ${this.deliveries.length} requests)`));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }
}

/** A sink with a little latency, so there are always sends in flight to be cut off. */
export function slowSink(sink: RecordingSink): RecordingSink {
  sink.respond = async () => {
    await pause(randomBetween(0, 3));
    return 202;
  };
  return sink;
}

/** The bridge as a child process. */
export class BridgeProcess {
  /** Every bridge started and not yet exited, so an afterEach can clean up after a failed test. */
  static readonly running = new Set<BridgeProcess>();

  /** SIGKILLs every bridge still running (test cleanup). */
  static async killAll(): Promise<void> {
    await Promise.all([...BridgeProcess.running].map((p) => p.kill9()));
  }

  readonly child: ChildProcess;
  readonly logs: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private listening: Promise<number>;

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, [join(ROOT, 'function', 'cli.ts'), 'bridge'], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', PORT: '0', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    BridgeProcess.running.add(this);
    void this.exited.then(() => BridgeProcess.running.delete(this));
    let resolvePort: (port: number) => void = () => undefined;
    let rejectPort: (err: Error) => void = () => undefined;
    this.listening = new Promise<number>((resolve, reject) => {
      resolvePort = resolve;
      rejectPort = reject;
    });
    this.listening.catch(() => undefined);
    let buffered = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          this.logs.push(entry);
          if (entry['message'] === 'bridge listening') resolvePort(Number(entry['port']));
        } catch {
          this.stderr.push(line);
        }
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk.toString('utf8')));
    void this.exited.then(({ code, signal }) => rejectPort(new Error(`bridge exited (${code ?? signal}) before listening: ${this.stderr.join('')}`)));
  }

  /** The health/metrics port, once the bridge logged that it listens (needs LOG_LEVEL info or lower). */
  port(): Promise<number> {
    return this.listening;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill9(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /**
   * Resolves once the bridge has answered an HTTP request (or after `timeoutMs`, or at its exit).
   * The bridge logs that it listens just before it installs its SIGTERM handler, in the same
   * synchronous step; it can answer a request only after that step, so an answer proves the handler
   * is there, and the log line does not.
   */
  async answering(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const port = await this.port();
    while (this.alive && Date.now() < deadline) {
      try {
        await (await fetch(`http://127.0.0.1:${port}/health/liveness`, { signal: AbortSignal.timeout(1000) })).arrayBuffer();
        return;
      } catch {
        await pause(20); // not answering yet
      }
    }
  }

  /** SIGTERM, once the bridge answers (its handler is installed by then), and its exit. */
  async terminate(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await this.answering().catch(() => undefined);
    if (this.alive) this.child.kill('SIGTERM');
    return this.exited;
  }

  async get(path: string): Promise<{ status: number; text: string }> {
    const res = await fetch(`http://127.0.0.1:${await this.port()}${path}`);
    return { status: res.status, text: await res.text() };
  }

  /** The value of one metric series from /metrics (0 when absent). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const { text } = await this.get('/metrics');
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([^{ ]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(m[3]);
    }
    return 0;
  }

  logged(message: string): Record<string, unknown>[] {
    return this.logs.filter((l) => l['message'] === message);
  }
}

/** Every key in the database (tests use private servers). */
export async function allKeys(redis: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/** For every item body, the set of ids it was delivered with; and for every id, its bodies. */
export function identities(deliveries: Delivery[]): { idsPerBody: Map<string, Set<string>>; bodiesPerId: Map<string, Set<string>> } {
  const idsPerBody = new Map<string, Set<string>>();
  const bodiesPerId = new Map<string, Set<string>>();
  for (const d of deliveries) {
    const body = d.body.toString('latin1');
    if (!idsPerBody.has(body)) idsPerBody.set(body, new Set());
    idsPerBody.get(body)!.add(d.id);
    if (!bodiesPerId.has(d.id)) bodiesPerId.set(d.id, new Set());
    bodiesPerId.get(d.id)!.add(body);
  }
  return { idsPerBody, bodiesPerId };
}

export const randomBetween = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));
export const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
