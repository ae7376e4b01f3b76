/**
 * The bridge on a Redis Cluster and on Sentinel that require passwords and speak TLS only (port 0,
 * tls-port, tls-replication, tls-cluster), trusted through REDIS_TLS_CA from a throwaway CA: items
 * are delivered and acknowledged; a wrong password or a certificate from another CA leaves the
 * bridge alive but not ready, with a reason that names the problem and the variable to fix, and
 * takes nothing from the queue; a Sentinel failover (kill -9 the master) over TLS loses nothing
 * acknowledged.
 */
import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import { BridgeProcess, RecordingSink, identities, slowSink, waitUntil } from '../helpers/bridge.ts';
import { useSink } from '../helpers/bridge-suite.ts';
import { keysMatching } from '../helpers/crash-run.ts';
import { expectFailoverLosesNothing } from '../helpers/failover-run.ts';
import { makePki, type Pki } from '../helpers/pki.ts';
import { startClusterDeployment, startSentinelDeployment, useDeployment } from '../helpers/redis-deployment.ts';
import { uniquePrefix } from '../helpers/redis.ts';

const PASSWORD = 'data-secret';
const SENTINEL_PASSWORD = 'sentinel-secret';
const USER = { name: 'job-robot', password: 'user-secret' };

interface Fault {
  name: string;
  /** Changes to the working settings; undefined removes a variable. */
  env: Record<string, string | undefined>;
  /** What readiness and the log must say. */
  reason: RegExp;
}

/**
 * Starts one bridge per fault (`base` settings changed by the fault), all at once: each must log
 * the failure with `reason`, answer 503 on readiness with it, stay alive and deliver nothing; then
 * each must stop cleanly on SIGTERM.
 */
async function expectRefused(faults: Fault[], base: Record<string, string>, sink: RecordingSink): Promise<void> {
  const bridges = faults.map((f) => {
    // With Redis away a stopping bridge waits out its grace for a hand-back: keep that short.
    const env = Object.entries({ ...base, ...f.env, K_SINK: sink.url, SHUTDOWN_GRACE_MS: '1000' }).filter((e): e is [string, string] => e[1] !== undefined);
    return new BridgeProcess(Object.fromEntries(env));
  });
  await Promise.all(
    bridges.map((b, i) =>
      waitUntil(() => b.logged('redis connection failed; retrying with backoff').length > 0, 20_000, `the failure of "${faults[i]!.name}" to be logged`, 50),
    ),
  );
  for (const [i, b] of bridges.entries()) {
    const f = faults[i]!;
    const logged = b.logged('redis connection failed; retrying with backoff')[0]!;
    expect(`${String(logged['err'])}; ${String(logged['hint'])}`, `${f.name}: log`).to.match(f.reason);
    const readiness = await b.get('/health/readiness');
    expect(readiness.status, `${f.name}: readiness`).to.equal(503);
    expect(readiness.text, `${f.name}: readiness reason`).to.match(f.reason);
    expect(b.alive, `${f.name}: alive`).to.equal(true);
  }
  for (const exit of await Promise.all(bridges.map((b) => b.terminate()))) {
    expect(exit, 'a refused bridge stops cleanly').to.deep.equal({ code: 0, signal: null });
  }
  expect(sink.deliveries, 'nothing delivered by a refused bridge').to.have.length(0);
}

/** Pushes `n` items (list mode) and returns their bodies. */
async function pushItems(redis: Redis | Cluster, queue: string, n: number, tag: string): Promise<string[]> {
  const bodies = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
  await redis.lpush(queue, ...bodies);
  return bodies;
}

/**
 * Every body reaches the sink under exactly one id; the bridges then stop cleanly and leave no key
 * of their queues behind (no claim, lease or attempt count).
 */
async function expectDeliveredOnce(redis: Redis | Cluster, queues: string[], sink: RecordingSink, bodies: string[], bridges: BridgeProcess[]): Promise<void> {
  await sink.waitFor(() => bodies.every((b) => sink.acceptedBodies().has(b)), 30_000, `${bodies.length} items at the sink`);
  for (const b of bridges) expect(await b.terminate(), 'exit of a bridge').to.deep.equal({ code: 0, signal: null });
  const { idsPerBody } = identities(sink.accepted());
  expect(bodies.filter((b) => idsPerBody.get(b)?.size !== 1), 'items with other than one id').to.deep.equal([]);
  for (const q of queues) expect(await keysMatching(redis, `*${q}*`), `keys of ${q} left`).to.deep.equal([]);
}

/**
 * 20 items wait on a new queue while a bridge with each fault is refused (`expectRefused`); every
 * item is still queued and none claimed; a bridge with the working `env` then delivers each once.
 */
async function expectRefusedKeepingItems(redis: Redis | Cluster, env: Record<string, string>, faults: Fault[], sink: RecordingSink): Promise<void> {
  const queue = `${uniquePrefix('refused')}queue`;
  const bodies = await pushItems(redis, queue, 20, 'refused');
  const base = { ...env, QUEUE_KEY: queue };
  await expectRefused(faults, base, sink);
  expect(await redis.llen(queue), 'items still queued').to.equal(bodies.length);
  expect(await keysMatching(redis, `{${queue}}*`), 'claim keys').to.deep.equal([]);
  await expectDeliveredOnce(redis, [queue], sink, bodies, [new BridgeProcess({ ...base, K_SINK: sink.url })]);
}

describe('bridge on Redis Cluster and Sentinel with passwords and TLS only', function () {
  this.timeout(120_000);
  let pki: Pki;
  /** Another CA: its certificate in REDIS_TLS_CA must not make the servers trusted. */
  let stranger: Pki;
  const s = useSink();

  before(async function () {
    pki = makePki('redis-auth-tls');
    stranger = makePki('redis-stranger');
  });
  after(function () {
    pki?.remove();
    stranger?.remove();
  });

  describe('Redis Cluster: 3 masters + 3 replicas, requirepass + masterauth, an ACL user, TLS only', function () {
    const d = useDeployment(() => startClusterDeployment({ password: PASSWORD, user: USER, tls: pki }));

    it('the nodes serve TLS only, and refuse a client without the password', async function () {
      for (const n of d.redis.cluster.nodes) {
        expect((await d.redis.cluster.cli(n.port, 'CONFIG', 'GET', 'port')).trim().split('\n')).to.deep.equal(['port', '0']);
      }
      expect(await d.redis.cluster.cli(d.redis.cluster.nodes[0]!.port, 'CONFIG', 'GET', 'tls-cluster')).to.match(/yes/);
      const anonymous = new Redis({ host: '127.0.0.1', port: d.redis.cluster.nodes[0]!.port, tls: { ca: pki.ca }, protocol: 2, enableReadyCheck: false, lazyConnect: true, retryStrategy: () => null });
      anonymous.on('error', () => undefined);
      await anonymous.connect();
      const refused = await anonymous.get('x').then(() => 'answered', (err: Error) => err.message);
      expect(refused).to.match(/^NOAUTH/);
      anonymous.disconnect();
    });

    it('REDIS_PASSWORD and REDIS_TLS_CA: 300 items on three queues (three masters) delivered once each and acknowledged', async function () {
      // One queue on each master, so every master's TLS and password are used.
      const prefix = uniquePrefix('cluster-tls');
      const byMaster = new Map<number, string>();
      for (let i = 0; byMaster.size < 3; i++) {
        const q = `${prefix}q${i}`;
        const master = await d.redis.cluster.masterOf(q);
        if (!byMaster.has(master)) byMaster.set(master, q);
      }
      const queues = [...byMaster.values()];
      const bridges = queues.map((q) => new BridgeProcess({ ...d.redis.env, QUEUE_KEY: q, K_SINK: s.sink.url }));
      const pushed = await Promise.all(queues.map((q) => pushItems(d.redis.client, q, 100, q)));
      await expectDeliveredOnce(d.redis.client, queues, s.sink, pushed.flat(), bridges);
    });

    it('an ACL user through REDIS_USERNAME, stream mode: delivered once each and acknowledged', async function () {
      const queue = `${uniquePrefix('cluster-tls-user')}stream`;
      const bridge = new BridgeProcess({ ...d.redis.env, REDIS_USERNAME: USER.name, REDIS_PASSWORD: USER.password, QUEUE_KEY: queue, MODE: 'stream', K_SINK: s.sink.url });
      const bodies = Array.from({ length: 50 }, (_, i) => `user-${i}`);
      for (const body of bodies) await d.redis.client.xadd(queue, '*', 'data', body);
      await s.sink.waitFor(() => bodies.every((b) => s.sink.acceptedBodies().has(b)), 30_000, 'the stream items at the sink');
      await waitUntil(async () => (await d.redis.client.xlen(queue)) === 0, 10_000, 'the stream acknowledged and trimmed');
      expect(s.sink.accepted()).to.have.length(bodies.length);
      expect((await bridge.terminate()).code).to.equal(0);
    });

    it('a wrong password, no password, or another CA: not ready with the reason and the variable to fix; the queue keeps every item', async function () {
      await expectRefusedKeepingItems(
        d.redis.client,
        d.redis.env,
        [
          { name: 'wrong password', env: { REDIS_PASSWORD: 'not-the-password' }, reason: /WRONGPASS.*check REDIS_USERNAME and REDIS_PASSWORD/ },
          { name: 'wrong ACL user password', env: { REDIS_USERNAME: USER.name, REDIS_PASSWORD: 'nope' }, reason: /WRONGPASS.*REDIS_PASSWORD/ },
          { name: 'no password', env: { REDIS_PASSWORD: undefined }, reason: /NOAUTH.*REDIS_PASSWORD/ },
          { name: 'untrusted CA', env: { REDIS_TLS_CA: stranger.ca }, reason: /certificate.*not trusted: check REDIS_TLS_CA/ },
        ],
        s.sink,
      );
    });
  });

  describe('Sentinel: master + replica with requirepass/masterauth, three sentinels with their own password, all TLS only', function () {
    const d = useDeployment(() => startSentinelDeployment({ password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD, tls: pki }));

    it('a wrong sentinel password, a wrong master password, or another CA: not ready with the reason; the queue keeps every item', async function () {
      await expectRefusedKeepingItems(
        d.redis.client,
        d.redis.env,
        [
          { name: 'wrong sentinel password', env: { REDIS_SENTINEL_PASSWORD: 'nope' }, reason: /sentinel.*WRONGPASS.*check REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD/ },
          { name: 'wrong master password', env: { REDIS_PASSWORD: 'nope' }, reason: /WRONGPASS.*check REDIS_USERNAME and REDIS_PASSWORD/ },
          { name: 'untrusted CA', env: { REDIS_TLS_CA: stranger.ca }, reason: /certificate.*not trusted: check REDIS_TLS_CA/ },
        ],
        s.sink,
      );
    });

    it('kill -9 the master while items flow over TLS: no acknowledged, replicated item lost or given two ids', async function () {
      const result = await expectFailoverLosesNothing('sentinel failover over TLS', d.redis, slowSink(s.sink), { mode: 'list', total: 600, killAfter: 200 });
      expect(result.acknowledged).to.be.at.least(600);
    });
  });
});
