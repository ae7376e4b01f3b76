import { Router } from 'express';
import { startupPhase } from '../startup-trace.ts';

/**
 * Liveness and readiness, at Knative func's default paths. Readiness is false until every named
 * check has passed; a failing check carries the reason the endpoint reports.
 */
export class Health {
  private readonly failures = new Map<string, string>();
  private draining = false;

  constructor(pending: string[] = []) {
    for (const name of pending) this.failures.set(name, 'not checked yet');
  }

  pass(check: string): void {
    this.failures.delete(check);
    if (this.ready) startupPhase('ready');
  }

  fail(check: string, reason: string): void {
    this.failures.set(check, reason);
  }

  /** Called on SIGTERM: readiness turns false so no new work is routed here. */
  drain(): void {
    this.draining = true;
  }

  get ready(): boolean {
    return !this.draining && this.failures.size === 0;
  }

  report(): { ready: boolean; draining: boolean; failing: Record<string, string> } {
    return { ready: this.ready, draining: this.draining, failing: Object.fromEntries(this.failures) };
  }

  router(): Router {
    const r = Router();
    r.get('/health/liveness', (_req, res) => {
      res.json({ alive: true });
    });
    r.get('/health/readiness', (_req, res) => {
      res.status(this.ready ? 200 : 503).json(this.report());
    });
    return r;
  }
}
