/**
 * The reaper's HTTP face: `POST /` with a PingSource CloudEvent runs the reaper and answers 200 with
 * the run's summary. Any other event type is 400. Callers: the allow-listed senders (the
 * PingSource's Knative identity), checked before the body is read. Health and metrics come from
 * baseApp.
 */
import type { Express, RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import { baseApp } from '../http/app.ts';
import { eventsFromRequest, rawBody } from '../http/cloudevent.ts';
import { InvalidEvent, errorHandler } from '../http/errors.ts';
import type { Health } from '../http/health.ts';
import type { Logger } from '../log.ts';
import type { Runs } from './runs.ts';

/** The CloudEvent type a Knative PingSource sends. */
export const PING_TYPE = 'dev.knative.sources.ping';

/** A ping carries little or no data; anything bigger is not a ping. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export interface ReaperAppDeps {
  /** Who may start a run (function/auth/gate.ts). */
  senders: RequestHandler;
  runs: Runs;
  health: Health;
  registry: Registry;
  log: Logger;
}

export function reaperApp({ senders, runs, health, registry, log }: ReaperAppDeps): Express {
  const app = baseApp(health, registry);
  app.post('/', senders, rawBody(BODY_LIMIT_BYTES), async (req, res) => {
    const events = eventsFromRequest(req.headers, req.body);
    const other = events.find((e) => e.type !== PING_TYPE);
    if (other) {
      throw new InvalidEvent(`the reaper runs on ${PING_TYPE} events, not ${other.type}`, 'unexpected-type', { type: other.type });
    }
    const eventLog = log.child({ eventId: events[0]!.id, source: events[0]!.source });
    res.locals['log'] = eventLog;
    res.status(200).json(await runs.run(eventLog));
  });
  app.use(errorHandler(log));
  return app;
}
