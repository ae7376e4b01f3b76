import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import type { Health } from './health.ts';
import { metricsRouter } from './metrics.ts';

/** The express app every job-robot function starts from: health, metrics, no framework banner. */
export function baseApp(health: Health, registry: Registry): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(health.router());
  app.use(metricsRouter(registry));
  return app;
}
