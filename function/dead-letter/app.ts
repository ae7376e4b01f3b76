/**
 * The dead-letter sink's HTTP function: `POST /` with the events the Broker gave up on; each is
 * appended to the queue's dead-letter stream as it was received (./request.ts reads the request,
 * ./record.ts makes the records). 202 once Redis holds them all, whatever the content; 503 with
 * Retry-After while Redis is away, so nothing is acknowledged that was not written; 415 only for a
 * request that cannot be from a Broker (no ce- header, no CloudEvents content type). Callers: the
 * allow-listed senders (the Trigger's Knative identity), checked before the body is read.
 */
import type { Express, RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';
import type { RedisClient } from '../queue/connection.ts';
import { appendDeadLetters } from '../queue/dead-letter.ts';
import type { QueueKeys } from '../queue/keys.ts';
import type { ResultSettings } from '../queue/results.ts';
import { baseApp } from '../http/app.ts';
import { mediaType } from '../http/cloudevent.ts';
import { errorHandler, RetryLater, UnsupportedMediaType } from '../http/errors.ts';
import type { Health } from '../http/health.ts';
import type { Logger } from '../log.ts';
import { readBody } from './body.ts';
import { recordOf } from './record.ts';
import { eventsIn, keptHeaders, mayBeCloudEvent } from './request.ts';

export interface DeadLetterAppDeps {
  /** Who may append dead letters (function/auth/gate.ts). */
  senders: RequestHandler;
  client: RedisClient;
  /** The queue whose dead-letter stream and results are written. */
  keys: QueueKeys;
  results: ResultSettings;
  /** The queue items' event type (the bridge's EVENT_TYPE): only their letters end an item's result. */
  itemType: string;
  health: Health;
  registry: Registry;
  log: Logger;
  /** Bytes of a request held in memory; the rest is only hashed. */
  maxRequestBytes: number;
  /** Bytes of an item (and of an event's JSON) written whole. */
  maxItemBytes: number;
  now?: () => Date;
}

export function deadLetterApp(d: DeadLetterAppDeps): Express {
  const written = new Counter({ name: 'job_robot_dead_letters_written_total', help: 'Events the Broker gave up on, written to the dead-letter stream', registers: [d.registry] });
  const app = baseApp(d.health, d.registry);
  app.post('/', d.senders, async (req, res) => {
    const headers = keptHeaders(req.headers);
    if (!mayBeCloudEvent(headers)) {
      throw new UnsupportedMediaType(`not a CloudEvent: no ce- headers and content-type ${mediaType(headers['content-type']) || '(none)'}`);
    }
    const body = await readBody(req, d.maxRequestBytes);
    if (d.client.status !== 'ready') throw new RetryLater('Redis is not reachable; the Broker should retry', 503, 5, 'redis-unavailable');
    const now = (d.now ?? (() => new Date()))();
    const headersJson = JSON.stringify(headers);
    const letters = eventsIn(headers, body).map((event) => ({
      ...recordOf(event, headersJson, d.maxItemBytes, now),
      endsItem: event.attributes.get('type') === d.itemType && !!event.attributes.get('id'),
    }));
    const refused = await appendDeadLetters(d.client, d.keys, d.results, letters);
    if (refused) throw new RetryLater(`Redis refused the dead letter: ${refused.message}`, 503, 5, 'redis-error');
    written.inc(letters.length);
    for (const letter of letters) d.log.warn({ eventId: letter.id, source: letter.source, code: letter.status, reason: letter.reason }, 'event dead-lettered by the Broker');
    // No body: Knative treats a non-empty reply that is not a CloudEvent as a failed delivery.
    res.status(202).set('X-Dead-Letters-Written', String(letters.length)).end();
  });
  app.use(errorHandler(d.log));
  return app;
}
