/**
 * A pass-through proxy in front of the real kube-apiserver that can answer chosen requests with a
 * fault (a status, a delay, or silence), for the failures a healthy test API server never shows:
 * 429 throttling, 5xx, timeouts. Everything else reaches the real server unchanged.
 *
 * It serves plain HTTP unless given a certificate: clients built on client-go send credentials
 * only over TLS (clientcmd reads a user's auth only when the transport is TLS).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, request as httpsRequest } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export type Fault =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  | { hang: true }
  | { delayMs: number };

export interface FaultRule {
  method?: string;
  /** Matched against the path without the query string. */
  path: RegExp;
  /** Matched against the query string, when given. */
  query?: RegExp;
  fault: Fault;
  /** Called when a request matches (before the fault applies). */
  onMatch?: (req: IncomingMessage) => void;
  /** Called when the answer to a matching request has been sent (or its connection closed). */
  onDone?: () => void;
}

export class FaultProxy {
  rules: FaultRule[] = [];
  private readonly server: Server;
  private readonly target: URL;
  private readonly ca: string;
  private readonly hung = new Set<ServerResponse>();
  private readonly tls: { ca: string; cert: string; key: string } | undefined;
  port = 0;

  /** `tls`: serve HTTPS with this certificate for 127.0.0.1 (and its CA, for `through`). */
  constructor(admin: KubeConfig, tls?: { ca: string; cert: string; key: string }) {
    const cluster = admin.getCurrentCluster()!;
    this.target = new URL(cluster.server);
    this.ca = Buffer.from(cluster.caData!, 'base64').toString('utf8');
    this.tls = tls;
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, handler) : createServer(handler);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** `kc` (a ServiceAccount client) re-pointed at this proxy, keeping its credentials. */
  through(kc: KubeConfig): KubeConfig {
    const user = kc.getCurrentUser()!;
    const out = new KubeConfig();
    out.loadFromOptions({
      clusters: [
        this.tls
          ? { name: 'proxy', server: `https://127.0.0.1:${this.port}`, caData: Buffer.from(this.tls.ca).toString('base64'), skipTLSVerify: false }
          : { name: 'proxy', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true },
      ],
      users: [user],
      contexts: [{ name: 'proxy', cluster: 'proxy', user: user.name }],
      currentContext: 'proxy',
    });
    return out;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [path = '/', query = ''] = (req.url ?? '/').split('?');
    const rule = this.rules.find((r) => (!r.method || r.method === req.method) && r.path.test(path) && (!r.query || r.query.test(query)));
    if (rule) {
      rule.onMatch?.(req);
      if (rule.onDone) res.once('close', rule.onDone);
      const f = rule.fault;
      if ('hang' in f) {
        this.hung.add(res);
        res.on('close', () => this.hung.delete(res));
        return;
      }
      if ('status' in f) {
        req.resume();
        res.writeHead(f.status, { 'content-type': 'application/json', ...f.headers });
        res.end(JSON.stringify(f.body ?? { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: f.status, message: `injected ${f.status}` }));
        return;
      }
      await new Promise((r) => setTimeout(r, f.delayMs));
    }
    const upstream = httpsRequest(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.target.host },
        ca: this.ca,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }
}
