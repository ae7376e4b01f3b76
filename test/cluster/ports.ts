import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports for the servers tests start (etcd, kube-apiserver, redis-server, ...), chosen below the
 * kernel's ephemeral range. A port the kernel handed out for `listen(0)` lies inside that range,
 * and once it is released any outgoing connection on the machine may take it as its local port
 * before the test's server binds it: with thousands of connections in flight during a test run,
 * a server then failed to start ("Address already in use") about once in several runs. Below the
 * range, only another listener can take a port, and each is handed out once per process.
 */
const FLOOR = 10_000;

/** The first port of the kernel's ephemeral range (Linux default 32768). */
function ephemeralStart(): number {
  try {
    const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && Number.isInteger(lo)) return lo;
  } catch {
    // not Linux
  }
  return 32_768;
}

const handedOut = new Set<number>();

/** Whether `port` can be bound on 127.0.0.1 right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A kernel-assigned port (inside the ephemeral range), for when no range below it is left. */
function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * A TCP port free on 127.0.0.1 now, below the ephemeral range and never handed out before in this
 * process; with `span`, port + span must be free too and below the range (a Redis Cluster bus).
 */
export async function freePort(span = 0): Promise<number> {
  const top = ephemeralStart() - 1 - span;
  if (top - FLOOR < 1_000) return kernelPort();
  for (let tries = 0; tries < 2_000; tries++) {
    const port = randomInt(FLOOR, top + 1);
    if (handedOut.has(port) || (span && handedOut.has(port + span))) continue;
    if ((await isPortFree(port)) && (!span || (await isPortFree(port + span)))) {
      handedOut.add(port);
      if (span) handedOut.add(port + span);
      return port;
    }
  }
  throw new Error(`no free port between ${FLOOR} and ${top}`);
}

/** A free port for a Redis Cluster node, whose cluster bus listens on port + 10000. */
export function freeClusterPort(): Promise<number> {
  return freePort(10_000);
}
