/**
 * A private Redis Cluster for a test run: three masters with one replica each, six
 * `redis-server --cluster-enabled yes` on free ports in temporary directories, joined with
 * `redis-cli --cluster create`; optionally with a password and TLS only (`RedisSecurity`). `stop()`
 * kills exactly the processes it started; a process 'exit' hook SIGKILLs them should the test run
 * die first.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freeClusterPort } from '../cluster/ports.ts';
import { waitUntil } from './bridge.ts';
import { cliArgs, cliFor, serverArgs, type Cli, type RedisSecurity } from './redis-security.ts';

const exec = promisify(execFile);

export interface ClusterNode {
  port: number;
  child: ChildProcess;
  dir: string;
}

export interface RedisClusterServers {
  nodes: ClusterNode[];
  /** `127.0.0.1:port,...` for REDIS_CLUSTER_NODES. */
  seeds: string;
  /** `redis-cli -p port <args>` against one node (authenticated, over TLS, as the nodes require). */
  cli: Cli;
  /** The port of the master serving `key`'s slot, from CLUSTER NODES of a live node. */
  masterOf(key: string): Promise<number>;
  /**
   * SIGKILLs the master serving `key` and resolves once a replica took its slots over and the
   * killed node, restarted from its nodes.conf, is back as the new master's replica (so WAIT has
   * a replica to count again).
   */
  killMasterOf(key: string): Promise<{ killed: number; promoted: number }>;
  /**
   * Moves the slot of `key` to another master, key by key, the way `redis-cli --cluster reshard`
   * does (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE): clients see ASK, then MOVED.
   */
  moveSlotOf(key: string): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

/** `redis-cli -p port <args>` against a node without password or TLS. */
export const cli: Cli = cliFor();

/**
 * Starts 3 masters + 3 replicas; `nodeTimeoutMs` is cluster-node-timeout (how fast a dead master is
 * failed over). With `security.tls`, each node's port is its TLS port and it has no other.
 */
export async function startRedisCluster(nodeTimeoutMs = 1_000, security: RedisSecurity = {}): Promise<RedisClusterServers> {
  const cli = cliFor(security);
  const nodes: ClusterNode[] = [];
  const killOnExit = () => {
    for (const n of nodes) n.child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const serve = (port: number, dir: string) =>
    spawn(
      'redis-server',
      [
        ...serverArgs(port, security), '--bind', '127.0.0.1', '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs),
        '--save', '', '--appendonly', 'no',
      ],
      { stdio: 'ignore' },
    );
  for (let i = 0; i < 6; i++) {
    const port = await freeClusterPort();
    const dir = mkdtempSync(join(tmpdir(), 'job-robot-redis-cluster-'));
    nodes.push({ port, child: serve(port, dir), dir });
  }
  const live = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    await Promise.all(
      live().map((n) => new Promise<void>((resolve) => {
        n.child.once('exit', () => resolve());
        n.child.kill('SIGKILL');
      })),
    );
    for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
  };
  try {
    for (const n of nodes) {
      await waitUntil(
        async () => {
          if (n.child.exitCode !== null) throw new Error(`redis-server on ${n.port} exited with ${n.child.exitCode}`);
          return (await cli(n.port, 'PING').catch(() => '')).startsWith('PONG');
        },
        10_000,
        `redis-server on ${n.port}`,
        50,
      );
    }
    await exec(
      'redis-cli',
      [...cliArgs(security), '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'],
      { timeout: 60_000 },
    );
    for (const n of nodes) {
      await waitUntil(async () => (await cli(n.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), 30_000, `cluster_state:ok on ${n.port}`, 100);
    }
    // Every replica attached and in sync, so a failover has something to promote.
    await waitUntil(
      async () => {
        const lines = (await cli(nodes[0]!.port, 'CLUSTER', 'NODES')).trim().split('\n');
        return lines.filter((l) => l.includes('slave') && l.includes('connected')).length === 3;
      },
      30_000,
      'three replicas connected',
      100,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const anyLive = () => live()[0]!.port;
  const slotOwners = async () => {
    const nodesOut = (await cli(anyLive(), 'CLUSTER', 'NODES')).trim().split('\n');
    return nodesOut.map((line) => {
      const f = line.split(' ');
      return { id: f[0]!, port: Number(f[1]!.split(':')[1]!.split('@')[0]), flags: f[2]!, master: f[3]!, slots: f.slice(8) };
    });
  };
  const masterOf = async (key: string): Promise<number> => {
    const slot = Number((await cli(anyLive(), 'CLUSTER', 'KEYSLOT', key)).trim());
    for (const n of await slotOwners()) {
      if (!n.flags.includes('master') || n.flags.includes('fail')) continue;
      for (const range of n.slots) {
        const [lo, hi] = range.split('-').map(Number);
        if (slot >= lo! && slot <= (hi ?? lo)!) return n.port;
      }
    }
    throw new Error(`no master serves the slot of ${key}`);
  };
  return {
    nodes,
    seeds: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    cli,
    masterOf,
    async killMasterOf(key: string) {
      const killed = await masterOf(key);
      const node = nodes.find((n) => n.port === killed)!;
      await new Promise<void>((resolve) => {
        node.child.once('exit', () => resolve());
        node.child.kill('SIGKILL');
      });
      let promoted = 0;
      await waitUntil(
        async () => {
          promoted = await masterOf(key).catch(() => 0);
          if (promoted === 0 || promoted === killed) return false;
          return (await cli(promoted, 'CLUSTER', 'INFO')).includes('cluster_state:ok');
        },
        60_000,
        `a replica to take over from ${killed}`,
        100,
      );
      node.child = serve(node.port, node.dir);
      await waitUntil(
        async () => {
          const info = await cli(promoted, 'INFO', 'replication').catch(() => '');
          return new RegExp(`slave\\d+:ip=127\\.0\\.0\\.1,port=${killed},state=online`).test(info);
        },
        60_000,
        `${killed} back as a replica of ${promoted}`,
        100,
      );
      return { killed, promoted };
    },
    async moveSlotOf(key: string) {
      const slot = (await cli(anyLive(), 'CLUSTER', 'KEYSLOT', key)).trim();
      const from = await masterOf(key);
      const all = await slotOwners();
      const source = all.find((n) => n.port === from)!;
      const target = all.find((n) => n.flags.includes('master') && !n.flags.includes('fail') && n.port !== from)!;
      await cli(target.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
      await cli(from, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
      for (;;) {
        const keys = (await cli(from, 'CLUSTER', 'GETKEYSINSLOT', slot, '100')).trim().split('\n').filter(Boolean);
        if (!keys.length) break;
        const auth = security.password ? ['AUTH', security.password] : [];
        await cli(from, 'MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', ...auth, 'KEYS', ...keys);
      }
      for (const n of all.filter((m) => m.flags.includes('master') && !m.flags.includes('fail'))) {
        await cli(n.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      }
      await waitUntil(async () => (await masterOf(key)) === target.port, 10_000, `slot ${slot} owned by ${target.port}`, 100);
      return { from, to: target.port };
    },
    stop,
  };
}
