/**
 * A private Sentinel deployment for a test run: a master, one replica and three sentinels
 * (`redis-server <conf> --sentinel`, what Debian's redis-sentinel runs), on free ports in temporary
 * directories; optionally with passwords and TLS only (`SentinelSecurity`). `stop()` kills exactly
 * the processes it started; a process 'exit' hook SIGKILLs them should the test run die first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../cluster/ports.ts';
import { waitUntil } from './bridge.ts';
import { cliFor, serverArgs, serverDirectives, type RedisSecurity } from './redis-security.ts';

export const SENTINEL_MASTER = 'job-robot';

interface Proc {
  port: number;
  dir: string;
  child: ChildProcess;
}

/**
 * The data nodes' security, and the sentinels': they use the same TLS (port 0, TLS port only, TLS
 * to the data nodes and to each other) and require `sentinelPassword` when it is set.
 */
export interface SentinelSecurity extends RedisSecurity {
  sentinelPassword?: string;
}

export interface RedisSentinelServers {
  /** `127.0.0.1:port,...` for REDIS_SENTINELS. */
  sentinels: string;
  sentinelPorts: number[];
  /** The master's port, as the sentinels report it now. */
  masterPort(): Promise<number>;
  /** SIGKILLs the master, resolves once the sentinels promoted the replica and the old master is back as its replica. */
  killMaster(): Promise<{ killed: number; promoted: number }>;
  stop(): Promise<void>;
}

export async function startRedisSentinel(downAfterMs = 1_000, security: SentinelSecurity = {}): Promise<RedisSentinelServers> {
  const cli = cliFor(security);
  const sentinelCli = cliFor(security, security.sentinelPassword);
  const procs: Proc[] = [];
  const killOnExit = () => {
    for (const p of procs) p.child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const dataServer = (port: number, dir: string, replicaOf?: number) =>
    spawn(
      'redis-server',
      [
        ...serverArgs(port, security), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
        ...(replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
      ],
      { stdio: 'ignore' },
    );
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    await Promise.all(
      procs
        .filter((p) => p.child.exitCode === null && p.child.signalCode === null)
        .map((p) => new Promise<void>((resolve) => {
          p.child.once('exit', () => resolve());
          p.child.kill('SIGKILL');
        })),
    );
    for (const p of procs) rmSync(p.dir, { recursive: true, force: true });
  };
  const ping = (port: number, run = cli) => waitUntil(async () => (await run(port, 'PING').catch(() => '')).startsWith('PONG'), 10_000, `redis on ${port}`, 50);
  try {
    const masterPort = await freePort();
    const masterDir = mkdtempSync(join(tmpdir(), 'job-robot-redis-sentinel-'));
    procs.push({ port: masterPort, dir: masterDir, child: dataServer(masterPort, masterDir) });
    await ping(masterPort);
    const replicaPort = await freePort();
    const replicaDir = mkdtempSync(join(tmpdir(), 'job-robot-redis-sentinel-'));
    procs.push({ port: replicaPort, dir: replicaDir, child: dataServer(replicaPort, replicaDir, masterPort) });
    await waitUntil(async () => /slave0:.*state=online/.test(await cli(masterPort, 'INFO', 'replication')), 20_000, 'replica online', 100);
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'job-robot-redis-sentinel-'));
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          ...serverDirectives(port, { tls: security.tls }).map((d) => d.join(' ')),
          ...(security.sentinelPassword ? [`requirepass ${security.sentinelPassword}`] : []),
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 2`,
          ...(security.password ? [`sentinel auth-pass ${SENTINEL_MASTER} ${security.password}`] : []),
          ...(security.sentinelPassword ? [`sentinel sentinel-pass ${security.sentinelPassword}`] : []),
          `sentinel down-after-milliseconds ${SENTINEL_MASTER} ${downAfterMs}`,
          `sentinel failover-timeout ${SENTINEL_MASTER} 10000`,
          `sentinel parallel-syncs ${SENTINEL_MASTER} 1`,
          '',
        ].join('\n'),
      );
      procs.push({ port, dir, child: spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }) });
    }
    const sentinels = procs.slice(2);
    for (const s of sentinels) {
      await ping(s.port, sentinelCli);
      // Each sentinel knows the replica and the two other sentinels: a failover can be agreed.
      await waitUntil(
        async () => {
          const out = await sentinelCli(s.port, 'SENTINEL', 'MASTER', SENTINEL_MASTER).catch(() => '');
          const f = out.trim().split('\n');
          const get = (k: string) => Number(f[f.indexOf(k) + 1]);
          return get('num-slaves') >= 1 && get('num-other-sentinels') >= 2;
        },
        30_000,
        `sentinel ${s.port} to see the replica and its peers`,
        100,
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const sentinelPorts = procs.slice(2).map((p) => p.port);
  const masterPort = async () => {
    const out = await sentinelCli(sentinelPorts[0]!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER);
    return Number(out.trim().split('\n')[1]);
  };
  return {
    sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
    sentinelPorts,
    masterPort,
    async killMaster() {
      const killed = await masterPort();
      const proc = procs.find((p) => p.port === killed)!;
      await new Promise<void>((resolve) => {
        proc.child.once('exit', () => resolve());
        proc.child.kill('SIGKILL');
      });
      let promoted = killed;
      await waitUntil(
        async () => {
          promoted = await masterPort().catch(() => killed);
          return promoted !== killed && /role:master/.test(await cli(promoted, 'INFO', 'replication').catch(() => ''));
        },
        60_000,
        'the sentinels to promote the replica',
        100,
      );
      // The old master comes back empty; the sentinels turn it into the new master's replica, but
      // they take their time (15-20 s here, over a minute on a loaded machine). After 5 s the
      // harness does what they would send: REPLICAOF. The tests are about the bridge, not this.
      proc.child = dataServer(killed, proc.dir);
      const online = async () =>
        new RegExp(`slave\\d+:ip=127\\.0\\.0\\.1,port=${killed},state=online`).test(await cli(promoted, 'INFO', 'replication').catch(() => ''));
      try {
        await waitUntil(online, 5_000, `${killed} back as a replica of ${promoted}`, 100);
      } catch {
        process.stderr.write(`      [sentinel] ${killed} not reconverted by the sentinels within 5 s; REPLICAOF 127.0.0.1 ${promoted}\n`);
        await cli(killed, 'REPLICAOF', '127.0.0.1', String(promoted)).catch(() => undefined);
        await waitUntil(online, 60_000, `${killed} back as a replica of ${promoted}`, 100);
      }
      return { killed, promoted };
    },
    stop,
  };
}
