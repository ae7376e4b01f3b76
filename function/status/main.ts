/**
 * `job-robot status <id> [--json] [--wait <seconds>]`: what became of one queue item, for the
 * producer that pushed it or an operator. See USAGE.
 */
import { BatchV1Api } from '@kubernetes/client-node';
import { CallOptions } from '../kube/call-options.ts';
import { kubeConfigAtStart, resolveNamespace } from '../kube/client.ts';
import { kubeFailure } from '../kube/api-error.ts';
import { explain, isMisconfiguration } from '../kube/failures.ts';
import { LIST_JOBS } from '../kube/permissions.ts';
import { connect, describeTarget, type RedisClient } from '../queue/connection.ts';
import { queueKeys } from '../queue/keys.ts';
import { MAX_WAIT_SECONDS, parseStatusArgs } from './args.ts';
import { loadStatusConfig } from './config.ts';
import { EXIT, exitCode, type ItemStatus } from './item.ts';
import { BLOCK_SLICE_MS, LookupFailed, StatusLookup, type JobsPlace } from './lookup.ts';
import { describeStatus, statusJson, type Waited } from './render.ts';

const USAGE = `usage: job-robot status <id> [--json] [--wait <seconds>]

What became of the queue item with event id <id> (its producer id with ID_FIELD): its result
record in the bridge's Redis, or, when there is none, its Job. Reads the bridge's variables
(REDIS_URL ... QUEUE_KEY, MODE, EVENT_SOURCE) and, for the Job, KUBECONFIG (or the in-cluster
ServiceAccount) and NAMESPACE.

  --json            print one JSON object instead of text
  --wait <seconds>  wait until the result is final (at most ${MAX_WAIT_SECONDS}), then print it

exit status: 0 known (with --wait: succeeded), 1 with --wait: failed or dead-lettered,
2 with --wait: not final when the time was up, 4 unknown id, 64 usage, 75 Redis or the
API server cannot answer, 77 not allowed to list Jobs (the fix is printed), 78 bad configuration
`;

/** Each Redis command but the blocking reads gives up after this: an unreachable Redis costs seconds. */
const COMMAND_TIMEOUT_MS = 5_000;

export async function main(argv: string[]): Promise<void> {
  const parsed = parseStatusArgs(argv);
  if ('help' in parsed) {
    process.stdout.write(USAGE);
    return;
  }
  if ('problem' in parsed) {
    process.stderr.write(`job-robot status: ${parsed.problem}\n\n${USAGE}`);
    process.exitCode = EXIT.usage;
    return;
  }
  const { id, json, waitSeconds } = parsed.args;
  const config = loadStatusConfig();

  const redis = connect(config.redis, 'job-robot-status', false, { commandTimeout: COMMAND_TIMEOUT_MS, lazyConnect: true });
  const clients: RedisClient[] = [redis];
  const calls = new CallOptions(config.kubeTimeoutSeconds * 1000);
  let place: JobsPlace | undefined;
  // The kubeconfig is read only when there is no record: a producer may have Redis and nothing else.
  const jobs = (): JobsPlace => {
    if (place) return place;
    const kc = kubeConfigAtStart();
    place = { api: kc.makeApiClient(BatchV1Api), namespace: resolveNamespace(config.namespace, kc), call: () => calls.call() };
    return place;
  };
  // Failures surface as rejected commands; the connections' own errors only need a listener.
  redis.on('error', () => undefined);
  const lookup = new StatusLookup({ redis, keys: queueKeys(config.queueKey), source: config.source, jobs, describe: describeTarget(config.redis) });

  let status: ItemStatus;
  let waited: Waited | undefined;
  try {
    if (waitSeconds === undefined) {
      status = await lookup.check(id);
    } else {
      // A Redis lost during the wait fails the read within one slice and a grace, not at the deadline.
      const blocking = connect(config.redis, 'job-robot-status-wait', true, { lazyConnect: true, commandTimeout: BLOCK_SLICE_MS + COMMAND_TIMEOUT_MS });
      blocking.on('error', () => undefined);
      clients.push(blocking);
      const result = await lookup.wait(id, waitSeconds, blocking);
      status = result.status;
      waited = { seconds: waitSeconds, timedOut: result.timedOut };
    }
  } catch (err) {
    if (!(err instanceof LookupFailed)) throw err;
    report(err);
    return;
  } finally {
    for (const c of clients) c.disconnect();
    await calls.close();
  }
  process.stdout.write(json ? statusJson(status, waited) : describeStatus(status, waited));
  process.exitCode = exitCode(status, waited !== undefined);
}

/** A question Redis or the API server could not answer: what, why, and the fix when there is one. */
function report(err: LookupFailed): void {
  if (err.source === 'redis') {
    process.stderr.write(`job-robot status: ${err.message}: ${(err.cause as Error).message}\n`);
    process.exitCode = EXIT.unavailable;
    return;
  }
  const f = kubeFailure(err.cause);
  const { message, fix } = explain(f, { needs: [LIST_JOBS], namespace: err.namespace ?? '' });
  process.stderr.write(`job-robot status: ${err.message}: ${message}\n${fix ? `fix: ${fix}\n` : ''}`);
  process.exitCode = isMisconfiguration(f) ? EXIT.permission : EXIT.unavailable;
}
