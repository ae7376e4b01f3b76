import { createServer, type Server } from 'node:http';
import type { Express } from 'express';
import type { Logger } from '../log.ts';
import type { Health } from './health.ts';

export interface RunningServer {
  server: Server;
  port: number;
  /** Stops accepting, waits for in-flight requests (up to `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

/** Listens on `port` (0 = any); resolves once listening. */
export function listen(app: Express, port: number, host = '0.0.0.0'): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.keepAliveTimeout = 65_000;
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      const bound = typeof addr === 'object' && addr ? addr.port : port;
      resolve({
        server,
        port: bound,
        close: (graceMs = 30_000) =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => server.closeAllConnections(), graceMs);
            // server.close() closes the connections idle at that moment only; a keep-alive
            // connection whose request finishes later would hold the process until graceMs.
            const sweep = setInterval(() => server.closeIdleConnections(), 50);
            server.close(() => {
              clearTimeout(timer);
              clearInterval(sweep);
              done();
            });
            server.closeIdleConnections();
          }),
      });
    });
  });
}

/**
 * SIGTERM/SIGINT: readiness off, stop accepting, let in-flight work finish, run `cleanup`, exit 0.
 * Knative sends SIGTERM when it scales a revision down.
 */
export function onShutdown(log: Logger, health: Health, running: RunningServer, cleanup: () => Promise<void> = async () => undefined): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    health.drain();
    await running.close();
    await cleanup();
    log.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
