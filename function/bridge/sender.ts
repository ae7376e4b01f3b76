/**
 * Posts events to K_SINK over HTTP(S) with keep-alive connections (one per delivery in flight), a
 * whole-request timeout (checked by one watchdog timer, to within a quarter of the timeout), K_CA_CERTS
 * added to the system roots for an https sink, and the bridge's token when it has one. It only
 * reports what happened; outcome.ts decides what that means.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { Outbound } from './event.ts';
import { TIMEOUT_CODE, type SendResult } from './outcome.ts';

export interface SenderOptions {
  sink: string;
  timeoutMs: number;
  /** Sockets kept open to the sink: the number of deliveries in flight. */
  connections: number;
  /** PEM certificates to trust for an https sink, on top of the system roots. */
  caCerts?: string | undefined;
  /** The Authorization header for each request (asked at every send, so a rotated token is used at once). */
  authorization?: (() => string | undefined) | undefined;
}

/** How much of an error answer is kept (for the log and the dead letter). */
const MAX_ERROR_BODY = 1024;

export class Sender {
  private readonly url: URL;
  private readonly target: { host: string; port: number; path: string; auth?: string };
  private readonly agent: HttpAgent;
  private readonly request: typeof httpRequest;
  private readonly timeoutMs: number;
  private readonly authorization: (() => string | undefined) | undefined;
  /** Requests in flight with their deadlines; one timer checks them all (no timer per request). */
  private readonly inflight = new Set<{ deadline: number; expire: () => void }>();
  private readonly watchdog: NodeJS.Timeout;

  constructor(options: SenderOptions) {
    this.url = new URL(options.sink);
    this.target = {
      host: this.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(this.url.port) || (this.url.protocol === 'https:' ? 443 : 80),
      path: `${this.url.pathname}${this.url.search}`,
      ...(this.url.username ? { auth: `${decodeURIComponent(this.url.username)}:${decodeURIComponent(this.url.password)}` } : {}),
    };
    this.timeoutMs = options.timeoutMs;
    this.authorization = options.authorization;
    const pool = { keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections };
    if (this.url.protocol === 'https:') {
      this.agent = new HttpsAgent({ ...pool, ca: options.caCerts ? [...rootCertificates, options.caCerts] : undefined });
      this.request = httpsRequest;
    } else {
      this.agent = new HttpAgent(pool);
      this.request = httpRequest;
    }
    this.watchdog = setInterval(() => this.expire(), Math.min(1_000, Math.max(25, Math.floor(this.timeoutMs / 4))));
    this.watchdog.unref();
  }

  private expire(): void {
    const now = Date.now();
    for (const entry of this.inflight) if (entry.deadline <= now) entry.expire();
  }

  send(out: Outbound): Promise<SendResult> {
    return new Promise((resolve) => {
      const entry = {
        deadline: Date.now() + this.timeoutMs,
        expire: () => {
          settle({ error: { code: TIMEOUT_CODE, message: `no answer from the sink within ${this.timeoutMs} ms` } });
          req.destroy();
        },
      };
      let settled = false;
      const settle = (result: SendResult) => {
        if (settled) return;
        settled = true;
        this.inflight.delete(entry);
        resolve(result);
      };
      const req = this.request({ ...this.target, method: 'POST', agent: this.agent, headers: out.headers }, (res) => {
        readAnswer(res).then(settle, (err: NodeJS.ErrnoException) => settle(transportError(err)));
      });
      const authorization = this.authorization?.();
      if (authorization !== undefined) req.setHeader('authorization', authorization);
      this.inflight.add(entry);
      req.on('error', (err: NodeJS.ErrnoException) => settle(transportError(err)));
      req.end(out.body);
    });
  }

  close(): void {
    clearInterval(this.watchdog);
    this.agent.destroy();
  }
}

function transportError(err: NodeJS.ErrnoException): SendResult {
  return { error: { code: err.code ?? err.name, message: err.message } };
}

/** Status and Retry-After; the body is read only for error answers, and only its start is kept. */
function readAnswer(res: IncomingMessage): Promise<SendResult> {
  const status = res.statusCode ?? 0;
  const retryAfter = res.headers['retry-after'];
  if (status >= 200 && status < 300) {
    res.resume();
    return new Promise((resolve, reject) => {
      res.on('end', () => resolve({ status, retryAfter, body: '' }));
      res.on('error', reject);
    });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      if (size < MAX_ERROR_BODY) chunks.push(chunk);
      size += chunk.length;
    });
    res.on('end', () => resolve({ status, retryAfter, body: Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY).toString('utf8') }));
    res.on('error', reject);
  });
}
