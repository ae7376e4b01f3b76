/**
 * Cluster service names for Knative's processes running on this machine. Knative's components
 * address each other as `http://<service>.<namespace>.svc.cluster.local`, and some of their
 * behaviour depends on it: the channel dispatcher unwraps the broker filter's error answer only
 * when the failing destination's host is `broker-filter.<system namespace>.svc.cluster.local`.
 *
 * Instead of changing /etc/hosts, each Knative process gets HTTP_PROXY pointing here. Go's HTTP
 * client then sends every plain-http request for a non-loopback host to this forward proxy, which
 * passes it unchanged (method, path, headers including Host, body) to the local port the name is
 * registered for. A name nobody registered fails like a name DNS does not know: the connection
 * is dropped. Requests to 127.0.0.1 (the API server) never come here. HTTPS goes through CONNECT
 * tunnels, for the names given one: `https://kubernetes.default.svc`, where Knative's OIDC
 * verifiers read the API server's issuer, is the API server (its serving certificate names it).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as connectTcp } from 'node:net';

/** One request that went through the proxy, and its answer. */
export interface Exchange {
  at: number;
  host: string;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The answer's status; 0 while none came, or when the connection failed. */
  status: number;
  answerHeaders: Record<string, string | string[] | undefined>;
}

export class ClusterNames {
  private readonly ports = new Map<string, number>();
  /** `host:port` → the local port a CONNECT tunnel for it reaches. */
  private readonly tunnels = new Map<string, number>();
  private readonly tunnelled = new Set<{ destroy(): void }>();
  /** Every request forwarded, in the order they arrived. */
  readonly exchanges: Exchange[] = [];
  private readonly server: Server;
  /** Hosts that were asked for but are not registered (for failure messages). */
  readonly unknown = new Set<string>();
  port = 0;

  constructor() {
    this.server = createServer((req, res) => this.forward(req, res));
    this.server.on('connect', (req: IncomingMessage, client, head: Buffer) => {
      const port = this.tunnels.get((req.url ?? '').toLowerCase());
      if (port === undefined) {
        this.unknown.add(req.url ?? '');
        client.destroy();
        return;
      }
      this.tunnelled.add(client);
      client.on('close', () => this.tunnelled.delete(client));
      const upstream = connectTcp(port, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
  }

  /** Makes HTTPS to `hostPort` (`host:443`) reach 127.0.0.1:`port` through a CONNECT tunnel. */
  tunnel(hostPort: string, port: number): void {
    this.tunnels.set(hostPort.toLowerCase(), port);
  }

  /** `http://<service>.<namespace>.svc.cluster.local` */
  static url(service: string, namespace: string, path = ''): string {
    return `http://${service}.${namespace}.svc.cluster.local${path}`;
  }

  /** Makes `host` (a cluster name, without a port) reach 127.0.0.1:`port`. */
  set(host: string, port: number): void {
    this.ports.set(host.toLowerCase(), port);
  }

  delete(host: string): void {
    this.ports.delete(host.toLowerCase());
  }

  /** The environment a Go program needs to resolve the registered names through this proxy. */
  env(): Record<string, string> {
    const proxy = `http://127.0.0.1:${this.port}`;
    return { HTTP_PROXY: proxy, http_proxy: proxy, HTTPS_PROXY: proxy, https_proxy: proxy, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' };
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address();
    if (!addr || typeof addr !== 'object') throw new Error('the cluster-names proxy has no port');
    this.port = addr.port;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.tunnelled) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Sends one request to `url` (a cluster name) through the proxy, as a Knative process would,
   * and returns the answer.
   */
  async send(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
    return new Promise((resolve, reject) => {
      const target = new URL(url);
      const req = request(
        { host: '127.0.0.1', port: this.port, method: init.method ?? 'POST', path: target.href, headers: { host: target.host, ...init.headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('a forward proxy takes absolute URLs');
      return;
    }
    const port = this.ports.get(target.hostname.toLowerCase());
    if (port === undefined || target.protocol !== 'http:') {
      this.unknown.add(target.host);
      req.socket.destroy();
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    const exchange: Exchange = { at: Date.now(), host: target.host, method: req.method ?? '', path: target.pathname, headers, status: 0, answerHeaders: {} };
    this.exchanges.push(exchange);
    const out = request({ host: '127.0.0.1', port, method: req.method, path: `${target.pathname}${target.search}`, headers }, (answer) => {
      exchange.status = answer.statusCode ?? 0;
      exchange.answerHeaders = answer.headers;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => req.socket.destroy());
    req.pipe(out);
  }
}
