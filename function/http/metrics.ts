import { Router } from 'express';
import { Registry, collectDefaultMetrics } from 'prom-client';

/** A fresh Prometheus registry with the process metrics, prefixed `job_robot_`. */
export function createRegistry(component: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry, prefix: 'job_robot_' });
  return registry;
}

/** `GET /metrics` in the Prometheus text format. */
export function metricsRouter(registry: Registry): Router {
  const r = Router();
  r.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return r;
}
