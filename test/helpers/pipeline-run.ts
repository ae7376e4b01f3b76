/**
 * Mocha hooks for an end-to-end suite. Before it: a fresh namespace, a client on the run's Redis
 * and a Job ledger on the namespace (not watching yet, so a test can add listeners first). `start()`
 * starts the ledger, then the whole pipeline (helpers/pipeline.ts) on a queue of its own. After the
 * suite, in reverse: the pipeline stopped and any component left killed, the ledger stopped, the
 * client closed, and the namespace deleted last, once nothing works in it any more.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { controlPlane } from '../cluster/fixture.ts';
import { JobLedger } from './job-ledger.ts';
import { adminConfig, createNamespace, deleteNamespace } from './kube.ts';
import { Component, startPipeline, type Pipeline, type PipelineOptions } from './pipeline.ts';
import { uniquePrefix } from './redis.ts';

/** What a suite chooses; the namespace, Redis and queue come from the hooks. */
export type RunOptions = Omit<PipelineOptions, 'admin' | 'namespace' | 'redisUrl' | 'queue'>;

export interface PipelineRun {
  /** The suite's namespace, and an admin KubeConfig. */
  readonly ns: { name: string; kc: KubeConfig };
  /** A client on the run's Redis, where the queue lives. */
  readonly redis: Redis;
  /** Every Job the namespace held since `start()`. */
  readonly ledger: JobLedger;
  readonly queue: string;
  readonly pipe: Pipeline;
  start(options: RunOptions): Promise<Pipeline>;
}

/**
 * `name` prefixes the namespace and the queue. With `ownControlPlane`, the suite is skipped (saying
 * why) when TEST_KUBECONFIG names an outside cluster instead of the control plane this run started.
 */
export function usePipelineRun(name: string, opts: { ownControlPlane?: string } = {}): PipelineRun {
  let ns: { name: string; kc: KubeConfig } | undefined;
  let redis: Redis | undefined;
  let ledger: JobLedger | undefined;
  let queue: string | undefined;
  let pipe: Pipeline | undefined;

  before(async function () {
    if (opts.ownControlPlane && !controlPlane()) {
      process.stderr.write(`      skipped: TEST_KUBECONFIG names an outside cluster; ${opts.ownControlPlane}\n`);
      this.skip();
    }
    const kc = adminConfig();
    ns = { name: await createNamespace(kc, name), kc };
    redis = new Redis(process.env['JOB_ROBOT_TEST_REDIS_URL']!);
    ledger = new JobLedger(kc, ns.name);
  });
  after(async function () {
    await pipe?.stop().catch(() => undefined);
    await Component.killAll();
    await ledger?.stop();
    redis?.disconnect();
    if (ns) await deleteNamespace(ns.kc, ns.name);
  });

  const there = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not there: read it in a test or a hook after usePipelineRun's, and after start()`);
    return value;
  };
  return {
    get ns() {
      return there(ns, 'the namespace');
    },
    get redis() {
      return there(redis, 'the Redis client');
    },
    get ledger() {
      return there(ledger, 'the Job ledger');
    },
    get queue() {
      return there(queue, 'the queue');
    },
    get pipe() {
      return there(pipe, 'the pipeline');
    },
    async start(options: RunOptions) {
      const l = there(ledger, 'the Job ledger');
      const n = there(ns, 'the namespace');
      queue = `${uniquePrefix(name)}queue`;
      await l.start();
      pipe = await startPipeline({ admin: n.kc, namespace: n.name, redisUrl: process.env['JOB_ROBOT_TEST_REDIS_URL']!, queue, ...options });
      return pipe;
    },
  };
}
