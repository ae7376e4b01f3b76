/**
 * The dead-letter sink's HTTP function: `POST /` with the events the Broker gave up on; each is
 * appended to the queue's dead-letter stream. 202 once Redis holds them all; 503 with Retry-After
 * while Redis is away, so nothing is acknowledged that was not written.
 */
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';
import type { RedisClient } from '../queue/connection.ts';
import { appendDeadLetters } from '../queue/dead-letter.ts';
import { baseApp } from '../http/app.ts';
import { eventsFromRequest, rawBody } from '../http/cloudevent.ts';
import { errorHandler, RetryLater } from '../http/errors.ts';
import type { Health } from '../http/health.ts';
import type { Logger } from '../log.ts';
import { itemBytes, noteFor } from './record.ts';

export interface DeadLetterAppDeps {
  client: RedisClient;
  key: string;
  health: Health;
  registry: Registry;
  log: Logger;
  maxRequestBytes: number;
  now?: () => Date;
}

export function deadLetterApp(d: DeadLetterAppDeps): Express {
  const written = new Counter({ name: 'job_robot_dead_letters_written_total', help: 'Events the Broker gave up on, written to the dead-letter stream', registers: [d.registry] });
  const app = baseApp(d.health, d.registry);
  app.post('/', rawBody(d.maxRequestBytes), async (req, res) => {
    const events = eventsFromRequest(req.headers, req.body);
    if (d.client.status !== 'ready') throw new RetryLater('Redis is not reachable; the Broker should retry', 503, 5, 'redis-unavailable');
    const now = (d.now ?? (() => new Date()))();
    const refused = await appendDeadLetters(d.client, d.key, events.map((event) => ({ id: event.id, item: itemBytes(event), ...noteFor(event, now) })));
    if (refused) throw new RetryLater(`Redis refused the dead letter: ${refused.message}`, 503, 5, 'redis-error');
    written.inc(events.length);
    for (const event of events) d.log.warn({ eventId: event.id, source: event.source, code: event['knativeerrorcode'] }, 'event dead-lettered by the Broker');
    // No body: Knative treats a non-empty reply that is not a CloudEvent as a failed delivery.
    res.status(202).set('X-Dead-Letters-Written', String(events.length)).end();
  });
  app.use(errorHandler(d.log));
  return app;
}
