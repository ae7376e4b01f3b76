/**
 * Mocha global fixture: one control plane and one Redis for the whole run.
 * - TEST_KUBECONFIG names an existing cluster (kind, k3d, minikube): use it, start nothing.
 * - otherwise start the private control plane (binaries from KUBEBUILDER_ASSETS or the build cache).
 * - REDIS_URL names a Redis: use it; otherwise start a private redis-server.
 * Tests read JOB_ROBOT_TEST_KUBECONFIG, JOB_ROBOT_TEST_REDIS_URL and (own control plane only)
 * JOB_ROBOT_TEST_ETCD_URL.
 */
import { startControlPlane, type ControlPlane } from './control-plane.ts';
import { testRedis, type RedisServer } from '../helpers/redis.ts';

let cp: ControlPlane | undefined;
let redis: RedisServer | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  const external = process.env['TEST_KUBECONFIG'];
  if (external) {
    process.env['JOB_ROBOT_TEST_KUBECONFIG'] = external;
  } else {
    const t0 = Date.now();
    cp = await startControlPlane();
    process.env['JOB_ROBOT_TEST_KUBECONFIG'] = cp.kubeconfig;
    process.env['JOB_ROBOT_TEST_ETCD_URL'] = cp.etcdUrl;
    process.stderr.write(`[fixture] control plane up in ${Date.now() - t0} ms\n`);
  }
  redis = await testRedis();
  process.env['JOB_ROBOT_TEST_REDIS_URL'] = redis.url;
}

export async function mochaGlobalTeardown(): Promise<void> {
  await redis?.stop();
  await cp?.stop();
}

/** The running control plane, when this run started one (fault tests restart its API server). */
export function controlPlane(): ControlPlane | undefined {
  return cp;
}
