/**
 * The API server's REST interface as a function calls it: JSON in, JSON out, over one pool of
 * keep-alive connections (so one TLS handshake serves many calls), with the Authorization header
 * of the moment (credentials.ts). What a function needs and nothing more: no typed model to
 * convert answers into, no per-call connection agent, no per-call timer beyond the socket's own.
 *
 * - Every call has a deadline: a call whose connection makes no progress for `timeoutMs` fails as
 *   a network failure (kube/api-error.ts: code 0).
 * - Answers are bounded: a body beyond `maxResponseBytes` fails the call, before it is held whole.
 * - A refused call throws KubeApiError with the status code, the Status body and the headers, which
 *   kube/api-error.ts reads like the client library's ApiException.
 * - Bodies go on the wire exactly as given (`json`), so strict field validation judges the text
 *   the operator wrote.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Credentials } from './credentials.ts';

/** The API server refused a call: its status code, Status body (JSON text) and headers. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly code: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;

  constructor(code: number, body: string, headers: IncomingHttpHeaders, what: string) {
    super(`${what}: HTTP ${code}`);
    this.code = code;
    this.body = body;
    this.headers = headers;
  }
}

/** A call's connection stayed silent for its deadline. */
export class IdleTimeout extends Error {
  override name = 'IdleTimeout';
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  query?: Query;
  /** Sent as JSON.stringify(body). */
  body?: unknown;
  /** Sent as it is: JSON text already serialized. */
  json?: string;
  /** Overrides the client's deadline for this call. */
  timeoutMs?: number;
  /** A successful answer's body is read and dropped; the call resolves with undefined. */
  discardBody?: boolean;
  /** The media types accepted (default application/json). */
  accept?: string;
  /** The largest answer this call reads (default: the client's `maxResponseBytes`). */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface KubeRestOptions {
  timeoutMs: number;
  /** The largest answer read (default 64 MiB: a page of 500 large Jobs). */
  maxResponseBytes?: number;
}

/** A refusal's body kept for its message: the Status object is small. */
const MAX_ERROR_BYTES = 64 * 1024;

export class KubeRest {
  readonly server: string;
  readonly namespace: string | undefined;
  private readonly creds: Credentials;
  private readonly agent: HttpAgent;
  private readonly request: typeof httpRequest;
  private readonly base: { protocol: string; hostname: string; port: string; prefix: string };
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(creds: Credentials, opts: KubeRestOptions) {
    this.creds = creds;
    this.server = creds.server;
    this.namespace = creds.namespace;
    this.timeoutMs = opts.timeoutMs;
    this.maxResponseBytes = opts.maxResponseBytes ?? 64 * 1024 * 1024;
    const url = new URL(creds.server);
    const secure = url.protocol === 'https:';
    this.base = { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || (secure ? '443' : '80'), prefix: url.pathname.replace(/\/+$/, '') };
    this.request = secure ? (httpsRequest as typeof httpRequest) : httpRequest;
    // LIFO: the connection used last is reused first, so an idle spell closes the others.
    this.agent = secure ? new HttpsAgent({ keepAlive: true, scheduling: 'lifo', ...creds.tls }) : new HttpAgent({ keepAlive: true, scheduling: 'lifo' });
  }

  get<T>(path: string, opts: CallOptions = {}): Promise<T> {
    return this.call<T>('GET', path, opts);
  }

  post<T>(path: string, opts: CallOptions = {}): Promise<T> {
    return this.call<T>('POST', path, opts);
  }

  delete<T>(path: string, opts: CallOptions = {}): Promise<T> {
    return this.call<T>('DELETE', path, opts);
  }

  /** One call; resolves with the parsed answer (undefined with `discardBody`). */
  async call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    const res = await this.open(method, path, opts);
    const text = await readBody(res, opts.maxBytes ?? this.maxResponseBytes, opts.discardBody === true);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Sends a call and resolves with the answer's stream once it is a 2xx (a watch reads it line by
   * line); a refusal throws KubeApiError. `idleMs` bounds the silence on the connection.
   */
  async open(method: string, path: string, opts: CallOptions & { idleMs?: number } = {}): Promise<IncomingMessage> {
    const authorization = await this.creds.authorization();
    const body = opts.json ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
    const headers: OutgoingHttpHeaders = { accept: opts.accept ?? 'application/json', 'user-agent': 'job-robot' };
    if (authorization) headers['authorization'] = authorization;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const idleMs = opts.idleMs ?? opts.timeoutMs ?? this.timeoutMs;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = this.request({
        protocol: this.base.protocol,
        hostname: this.base.hostname,
        port: this.base.port,
        path: `${this.base.prefix}${path}${queryString(opts.query)}`,
        method,
        headers,
        agent: this.agent,
        timeout: idleMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      let response: IncomingMessage | undefined;
      req.once('timeout', () => {
        const err = new IdleTimeout(`${method} ${path}: no answer from the API server within ${idleMs} ms`);
        if (response) response.destroy(err);
        else req.destroy(err);
      });
      req.once('error', reject);
      req.once('response', (res: IncomingMessage) => resolve((response = res)));
      req.end(body);
    });
    if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) return res;
    const text = (await readBody(res, MAX_ERROR_BYTES, false, true)) ?? '';
    throw new KubeApiError(res.statusCode ?? 0, text, res.headers, `${method} ${path}`);
  }

  /** Closes the pooled connections (at shutdown). */
  close(): void {
    this.agent.destroy();
  }
}

/** `?a=1&b=x` for the defined values; empty for none. */
export function queryString(query: Query | undefined): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) if (v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * The answer's body as text, at most `max` bytes (`truncate`: keep the first `max` bytes and stop;
 * otherwise fail beyond them); with `discard`, read and dropped (undefined).
 */
function readBody(res: IncomingMessage, max: number, discard: boolean, truncate = false): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      if (discard) return;
      size += chunk.length;
      if (size > max) {
        if (truncate) {
          chunks.push(chunk.subarray(0, chunk.length - (size - max)));
          res.destroy();
          resolve(Buffer.concat(chunks).toString('utf8'));
          return;
        }
        // Settled here: destroying the answer also emits 'aborted', which must not name the cause.
        const err = new Error(`the API server's answer exceeds ${max} bytes`);
        reject(err);
        res.destroy(err);
        return;
      }
      chunks.push(chunk);
    });
    res.once('end', () => resolve(discard ? undefined : chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    res.once('error', reject);
    res.once('aborted', () => reject(new Error('the API server closed the connection mid-answer')));
  });
}
