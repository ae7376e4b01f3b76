/**
 * A TCP pass-through in front of a real redis-server that can lose one reply: once armed, the next
 * bytes Redis sends back are dropped and the client's connection is cut, so the command ran on the
 * server but its caller never heard. Everything else passes through untouched.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class ReplyCut {
  readonly port: Promise<number>;
  /** Replies dropped so far. */
  cuts = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Replies still to pass before the next one is dropped; -1 when not armed. */
  private armed = -1;

  constructor(redisPort: number) {
    this.server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: redisPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.on('data', (chunk) => upstream.write(chunk));
      upstream.on('data', (chunk) => {
        if (this.armed !== 0) {
          if (this.armed > 0) this.armed -= 1;
          client.write(chunk);
          return;
        }
        this.armed = -1;
        this.cuts += 1;
        client.destroy();
        upstream.destroy();
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    this.port = new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as { port: number }).port)));
  }

  /**
   * Drops a reply from Redis, whatever command it answers, and cuts that connection: the next one,
   * or the one after `pass` more have gone through (each command's reply comes in one piece here).
   */
  arm(pass = 0): void {
    this.armed = pass;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
