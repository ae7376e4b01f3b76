/**
 * The launcher's HTTP surface:
 *   POST /           CloudEvents (binary, structured, batch) → 202, one Job per event;
 *                    callers: the allow-listed senders (the Trigger's Knative identity)
 *   GET  /jobs/:name the Job's state (the 202's Location): running, succeeded, failed; 404 when gone;
 *                    callers: ServiceAccounts of the launcher's namespace
 * plus health and metrics from baseApp. Errors become answers in errorHandler, nowhere else.
 *
 * A 202 has an empty body unless the client asks for JSON (`Accept: application/json`): Knative's
 * Broker treats a non-empty reply that is not a CloudEvent as a failed delivery and would retry an
 * event whose Job exists. The Location and X-Job-Status headers name the outcome either way.
 */
import type { Express, Request, RequestHandler, Response } from 'express';
import type { Registry } from 'prom-client';
import { Limiter } from '../async/limiter.ts';
import { baseApp } from '../http/app.ts';
import { eventsFromRequest, mediaType, rawBody } from '../http/cloudevent.ts';
import { errorHandler, HttpError } from '../http/errors.ts';
import type { Health } from '../http/health.ts';
import type { Logger } from '../log.ts';
import { startupPhase } from '../startup-trace.ts';
import type { Launched, Launcher, Planned } from './create.ts';
import type { LauncherMetrics } from './metrics.ts';
import type { JobStatus } from './status.ts';

export interface AppDeps {
  /** Who may post events (function/auth/gate.ts); checked before the body is read. */
  senders: RequestHandler;
  /** Who may read a Job's state. */
  readers: RequestHandler;
  launcher: Launcher;
  status: JobStatus;
  health: Health;
  registry: Registry;
  metrics: LauncherMetrics;
  log: Logger;
  maxRequestBytes: number;
  maxBatchEvents: number;
}

/** Creates of one batch running at once. */
const BATCH_CONCURRENCY = 8;

export function launcherApp(d: AppDeps): Express {
  const app = baseApp(d.health, d.registry);

  app.post('/', d.senders, rawBody(d.maxRequestBytes), async (req: Request, res: Response) => {
    const events = eventsFromRequest(req.headers, req.body, { maxBatchEvents: d.maxBatchEvents });
    d.metrics.eventsReceived.inc(events.length);
    const single = events.length === 1;
    if (single) res.locals['log'] = eventLog(d.log, events[0]!);
    // Every event is checked before any Job is created: a bad batch creates nothing.
    const planned = events.map((e) => d.launcher.plan(e));
    const launched = single
      ? [await d.launcher.launch(planned[0]!, res.locals['log'] as Logger)]
      : await launchAll(d, planned);
    answer(req, res, launched, single, d.launcher.namespace);
    startupPhase('first-202');
  });

  app.get('/jobs/:name', d.readers, async (req: Request<{ name: string }>, res: Response) => {
    const report = await d.status.report(req.params.name);
    if (!report) {
      res.status(404).json({ error: 'not-found', message: `no Job ${req.params.name} owned by this launcher` });
      return;
    }
    res.json(report);
  });

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: 'not-found', message: `no route ${req.method} ${req.path}` });
  });
  app.use(errorHandler(d.log, (err: HttpError) => d.metrics.rejections.inc({ reason: err.reason })));
  return app;
}

const eventLog = (log: Logger, e: { id: string; source: string; type: string }): Logger =>
  log.child({ eventId: e.id, eventSource: e.source, eventType: e.type });

/**
 * Creates a batch's Jobs, a few at a time; duplicates within the batch are created once. Every
 * create is awaited before the first failure is thrown, so the answer reflects what exists; a
 * redelivered batch then finds those Jobs and answers 202 for them.
 */
async function launchAll(d: AppDeps, planned: Planned[]): Promise<Launched[]> {
  const unique = [...new Map(planned.map((p) => [p.name, p])).values()];
  const results = new Map<string, Launched>();
  let failure: unknown;
  const limiter = new Limiter(BATCH_CONCURRENCY);
  for (const p of unique) {
    await limiter.run(async () => {
      try {
        results.set(p.name, await d.launcher.launch(p, eventLog(d.log, p.event)));
      } catch (err) {
        failure ??= err;
      }
    });
  }
  await limiter.drain();
  if (failure) throw failure;
  return planned.map((p) => results.get(p.name)!);
}

/** Whether the client explicitly asked for a JSON body (a wildcard does not count). */
export function wantsJson(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((range) => {
    const [type, ...params] = range.split(';');
    if (mediaType(type) !== 'application/json') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return !q || Number(q.slice(2)) > 0;
  });
}

function answer(req: Request, res: Response, launched: Launched[], single: boolean, namespace: string): void {
  const items = launched.map((l) => ({ job: l.name, namespace, created: l.created, location: `/jobs/${l.name}` }));
  if (single) {
    res.set('Location', items[0]!.location);
    res.set('X-Job-Status', items[0]!.created ? 'created' : 'exists');
  }
  res.status(202);
  if (!wantsJson(req.get('accept'))) {
    res.end();
    return;
  }
  res.json(single ? items[0] : { jobs: items });
}
