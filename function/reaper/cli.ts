/** `job-robot reap [--dry-run] [--json]`: one reaper run from an operator's shell, with the function's configuration. */
import { parseArgs } from 'node:util';
import { HttpError, Misconfigured, RetryLater } from '../http/errors.ts';
import { kubeConfigAtStart, resolveNamespace, restOf } from '../kube/client.ts';
import { restJobs } from '../kube/jobs-api.ts';
import { createLogger } from '../log.ts';
import { loadReaperConfig } from './config.ts';
import { QueueInFlight } from './in-flight.ts';
import type { Decision } from './policy.ts';
import { Reaper } from './reap.ts';
import { QueueResults } from './results.ts';
import type { ReapSummary, ResultsSummary } from './summary.ts';

const USAGE = `usage: job-robot reap [--dry-run] [--json]

Deletes the finished Jobs job-robot owns in NAMESPACE that are past their retention
(REAPER_SUCCEEDED_MAX_AGE, REAPER_FAILED_MAX_AGE, REAPER_SUCCEEDED_KEEP, REAPER_FAILED_KEEP).
With the bridge's Redis variables set (REDIS_URL ... QUEUE_KEY, MODE), it keeps expired Jobs whose
queue item is still in flight, so a redelivery cannot make a second Job, and it records the result
of every finished Job of that queue whose result Redis lacks (RESULT_RETENTION_SECONDS,
RESULTS_MAX_LEN): a Job goes only once its result is final there.

  --dry-run   list what would be deleted, delete nothing, record no results
  --json      print the run's summary as JSON (the function's answer) instead of text

exit status: 0 done, 1 some Jobs could not be deleted, 2 usage, 75 API server unavailable,
77 missing permissions (the fix is printed), 78 bad configuration
`;

/** EX_TEMPFAIL and EX_NOPERM from sysexits.h; cli.ts uses EX_CONFIG (78). */
const EXIT = { ok: 0, partial: 1, usage: 2, unavailable: 75, permission: 77 } as const;

export async function main(argv: string[]): Promise<void> {
  let flags: { 'dry-run'?: boolean; json?: boolean; help?: boolean };
  try {
    flags = parseArgs({
      args: argv,
      options: { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`job-robot reap: ${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = EXIT.usage;
    return;
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return;
  }

  // The command serves no HTTP, so it has no callers to authenticate.
  const config = loadReaperConfig({ ...process.env, OIDC_AUTHENTICATION: 'disabled' });
  // The operator's kubeconfig through the client library, so exec plugins and auth providers
  // work; the calls go over kube/rest.ts, as the function's do.
  const kc = kubeConfigAtStart();
  const rest = restOf(kc, config.kubeTimeoutSeconds * 1000);
  const queue = config.queue;
  const inFlight = queue ? new QueueInFlight(queue) : undefined;
  const results = queue && inFlight ? new QueueResults(queue, config.results, {}, inFlight.client) : undefined;
  const close = () => {
    rest.close();
    return Promise.all([inFlight?.close(), results?.close()]);
  };
  const reaper = new Reaper(restJobs(rest), {
    namespace: resolveNamespace(config.namespace, kc),
    ...(config.instance ? { instance: config.instance } : {}),
    policy: config.policy,
    concurrency: config.concurrency,
    pageSize: config.pageSize,
    dryRun: config.dryRun,
    ...(inFlight ? { inFlight } : {}),
    ...(results ? { results } : {}),
    // stdout carries the result; per-Job failures are in the summary
    log: createLogger('silent'),
  });
  const dryRun = flags['dry-run'] || reaper.dryRun;
  const now = Date.now();
  const print = (d: Decision) => {
    if (d.action === 'delete') {
      process.stdout.write(`would delete ${d.job.name} (${d.job.class}, finished ${new Date(d.job.finishedAt).toISOString()}, ${age(now - d.job.finishedAt)} ago)\n`);
    }
  };

  let summary: ReapSummary;
  try {
    summary = await reaper.run({ dryRun, ...(dryRun && !flags.json ? { onDecision: print } : {}) });
  } catch (err) {
    await close();
    if (!(err instanceof HttpError)) throw err;
    process.stderr.write(`job-robot reap: ${err.message}\n`);
    if (err instanceof Misconfigured) process.stderr.write(`fix: ${err.fix}\n`);
    process.exitCode = err instanceof Misconfigured ? EXIT.permission : err instanceof RetryLater ? EXIT.unavailable : EXIT.partial;
    return;
  }
  await close();
  process.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : describe(summary));
  process.exitCode = summary.errors ? EXIT.partial : EXIT.ok;
}

/** The summary for a person. */
export function describe(s: ReapSummary): string {
  const kept = Object.entries(s.kept)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${n} ${reason}`)
    .join(', ');
  const lines = [
    `namespace ${s.namespace} (${s.selector}): examined ${s.examined} Job(s) in ${s.durationMs} ms`,
    s.dryRun
      ? `dry run: would delete ${s.expired}, deleted nothing`
      : `deleted ${s.deleted} (${s.deletedByClass.succeeded} succeeded, ${s.deletedByClass.failed} failed), already gone ${s.alreadyGone}, errors ${s.errors}`,
    `kept ${Object.values(s.kept).reduce((a, b) => a + b, 0)}${kept ? `: ${kept}` : ''}`,
    ...(s.results ? [describeResults(s.results, s.dryRun)] : []),
    ...s.failures.map((f) => `error: ${f.job}: ${f.code} ${f.reason}: ${f.message}`),
  ];
  if (s.interrupted) lines.push('interrupted: the run stopped early');
  return `${lines.join('\n')}\n`;
}

/** The results line: what the run recorded, and the finished Jobs it had nothing to record for. */
export function describeResults(r: ResultsSummary, dryRun: boolean): string {
  const recorded = r.recorded.succeeded + r.recorded.failed;
  const head = dryRun ? 'results: dry run, recorded nothing' : `results: recorded ${recorded} (${r.recorded.succeeded} succeeded, ${r.recorded.failed} failed)`;
  const none = [r.withoutEvent ? `${r.withoutEvent} without event annotations` : '', r.otherSource ? `${r.otherSource} of another event source` : ''].filter(Boolean);
  const parts = [head, ...(none.length ? [`nothing to record for ${none.join(', ')}`] : []), ...(r.unavailable ? ['Redis did not answer or refused: Jobs whose result is not final were kept'] : [])];
  return parts.join('; ');
}

/** 93784000 → "1d2h3m"; units that are zero are left out ("1d3m"); under a minute in seconds. */
export function age(ms: number): string {
  if (ms < 60_000) return `${Math.max(0, Math.floor(ms / 1000))}s`;
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]];
  let rest = ms;
  let out = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n) out += `${n}${unit}`;
  }
  return out;
}
