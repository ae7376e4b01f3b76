/**
 * The results function's HTTP face: `POST /` with one ApiServerSource event about a Job (binary or
 * structured mode). The decision is ./decide.ts; this file reads the request, writes the record and
 * answers:
 *
 * | answer | when |
 * |---|---|
 * | 200 + outcome event | an add or update of a finished Job whose record is final in that same state, now or already (a redelivery): ./reply.ts |
 * | 202, no body | recorded without an outcome to announce (running, deleted, or the record ended otherwise, e.g. dead-lettered); or ignored (not this instance's Job for a queue item) |
 * | 400 | not an ApiServerSource resource event, or data that is not a Kubernetes object, or a malformed Job (never worth retrying) |
 * | 413 | the request is over MAX_REQUEST_BYTES (read no further) |
 * | 415 | not a single CloudEvent (binary or structured mode) |
 * | 503 + Retry-After | Redis is away, slow or refuses the write: nothing is acknowledged that was not written |
 *
 * A 202 has no body: Knative takes a non-empty reply that is not a CloudEvent for a failed
 * delivery. Callers: the allow-listed senders (the results Trigger's Knative identity), checked
 * before the body is read. Health and metrics come from baseApp.
 */
import type { Express, Request, RequestHandler, Response } from 'express';
import type { Registry } from 'prom-client';
import { baseApp } from '../http/app.ts';
import { eventsFromRequest, mediaType, rawBody, type Incoming } from '../http/cloudevent.ts';
import { errorHandler, HttpError, RetryLater, UnsupportedMediaType } from '../http/errors.ts';
import type { Health } from '../http/health.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../queue/connection.ts';
import type { Results } from '../queue/results.ts';
import { decide, type Recording } from './decide.ts';
import { readJobChange } from './job-event.ts';
import { SeenCreated } from './seen.ts';
import type { ResultsMetrics } from './metrics.ts';
import { isFinishedRecording, outcomeReply, type FinishedRecording } from './reply.ts';

/** Seconds the Broker is asked to wait before it retries while Redis is away. */
export const RETRY_AFTER_SECONDS = 5;

/** How long a write (or read) waits for Redis before the answer is 503; the Trigger's timeout is 30 s. */
export const REDIS_WAIT_MS = 10_000;

const BATCH = 'application/cloudevents-batch+json';

export interface ResultsAppDeps {
  /** Who may post events (function/auth/gate.ts); checked before the body is read. */
  senders: RequestHandler;
  client: RedisClient;
  results: Results;
  /** This job-robot's INSTANCE: whose Jobs these are. */
  instance: string | undefined;
  /** The `jobrobot` value of the outcome events. */
  mark: string;
  health: Health;
  registry: Registry;
  metrics: ResultsMetrics;
  log: Logger;
  maxRequestBytes: number;
  /** How long Redis may take (tests); default REDIS_WAIT_MS. */
  redisWaitMs?: number;
}

export function resultsApp(d: ResultsAppDeps): Express {
  const app = baseApp(d.health, d.registry);
  const seen = new SeenCreated();
  app.post('/', d.senders, rawBody(d.maxRequestBytes), async (req: Request, res: Response) => {
    const event = oneEvent(req);
    const log = d.log.child({ eventId: event.id, eventType: event.type, subject: event.subject });
    res.locals['log'] = log;
    const { change, watched } = readJobChange(event);
    const decision = decide(change, watched, d.instance);
    if (decision.action === 'ignore') {
      d.metrics.ignored.inc({ reason: decision.reason });
      log.debug({ reason: decision.reason }, `ignored: ${decision.detail}`);
      res.status(202).end();
      return;
    }
    const { id, state } = decision.update;
    if (state === 'created' && seen.has(id)) {
      res.status(202).end();
      return;
    }
    const itemLog = log.child({ itemId: id, job: decision.update.job });
    res.locals['log'] = itemLog;
    const changed = await inRedis(d, 'the result', () => d.results.recordOne(decision.update));
    seen.add(id);
    if (changed) {
      d.metrics.recorded.inc({ state });
      const fields = { state, change, reason: decision.update.reason };
      if (state === 'created') itemLog.debug(fields, 'result recorded');
      else itemLog.info(fields, 'result recorded');
    }
    const finished = await toAnnounce(d, decision, changed === true);
    if (!finished) {
      res.status(202).end();
      return;
    }
    const reply = outcomeReply(finished, d.mark);
    d.metrics.replies.inc({ type: reply.type });
    itemLog.debug({ reply: reply.id, type: reply.type }, 'outcome event answered');
    res.status(200).set(reply.headers).end(JSON.stringify(reply.data));
  });
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: 'not-found', message: `no route ${req.method} ${req.path}` });
  });
  app.use(errorHandler(d.log, (err: HttpError) => d.metrics.rejections.inc({ reason: err.reason })));
  return app;
}

/** The request's one CloudEvent; a batch is refused (an ApiServerSource sends one event a request). */
function oneEvent(req: Request): Incoming {
  const type = mediaType(req.headers['content-type']);
  if (type === BATCH) throw new UnsupportedMediaType(`the results function reads one event a request (binary or structured mode), not ${BATCH}`);
  return eventsFromRequest(req.headers, req.body)[0]!;
}

/**
 * The record to answer with the outcome event for, if any: a finished Job's add or update whose
 * record is now final in the Job's state, written by this event or found so (a redelivery, or an
 * update that arrived before its add). None for a record that ended otherwise (dead-lettered).
 */
async function toAnnounce(d: ResultsAppDeps, decision: Recording, changed: boolean): Promise<FinishedRecording | undefined> {
  if (!decision.reply || !isFinishedRecording(decision)) return undefined;
  if (changed) return decision;
  const record = await inRedis(d, 'the result', () => d.results.get(decision.update.id));
  return record?.state === decision.update.state ? decision : undefined;
}

/** `work` against Redis, bounded in time; away, slow or refusing is a 503 the Broker retries. */
async function inRedis<T>(d: ResultsAppDeps, what: string, work: () => Promise<T>): Promise<T> {
  if (d.client.status !== 'ready') throw new RetryLater('Redis is not reachable; the Broker should retry', 503, RETRY_AFTER_SECONDS, 'redis-unavailable');
  const waitMs = d.redisWaitMs ?? REDIS_WAIT_MS;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RetryLater(`Redis did not answer within ${waitMs} ms; the Broker should retry`, 503, RETRY_AFTER_SECONDS, 'redis-timeout')), waitMs);
  });
  try {
    return await Promise.race([work(), late]);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new RetryLater(`Redis refused ${what}: ${(err as Error).message}`, 503, RETRY_AFTER_SECONDS, 'redis-error');
  } finally {
    clearTimeout(timer);
  }
}
