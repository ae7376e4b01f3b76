/**
 * Checks at start, each a readiness check: the launcher's own permissions (SelfSubjectAccessReview)
 * and the Job template (a server-side dry-run create with strict field validation of the Job an
 * event would get). A failing check keeps readiness false, logs what is wrong and how to fix it
 * (once per distinct reason), and is retried with backoff, so a fix applied later (kubectl apply)
 * turns the launcher ready without a restart.
 */
import type { V1Job } from '@kubernetes/client-node';
import { backoffDelay } from '../async/backoff.ts';
import { pause } from '../async/wait.ts';
import { checkAccess, REVIEW_ACCESS } from '../kube/access.ts';
import { kubeFailure } from '../kube/api-error.ts';
import { explain } from '../kube/failures.ts';
import { dryRunJob } from '../kube/job-dry-run.ts';
import { describePermission, type Permission } from '../kube/permissions.ts';
import type { KubeRest } from '../kube/rest.ts';
import type { Health } from '../http/health.ts';
import type { Logger } from '../log.ts';
import { startupPhase } from '../startup-trace.ts';

export const PERMISSIONS_CHECK = 'permissions';
export const TEMPLATE_CHECK = 'template';

export interface StartupDeps {
  rest: KubeRest;
  namespace: string;
  health: Health;
  log: Logger;
  permissions: Permission[];
  /** The Job a sample event gets: what the dry run submits. */
  sampleJob: V1Job;
}

/** Backoff between rounds of failing checks: 1-2 s at first, doubling to 30-60 s. */
const RECHECK = { minMs: 2_000, maxMs: 60_000 };

interface Outcome {
  ok: boolean;
  reason?: string;
  fix?: string;
}

export class Startup {
  private readonly d: StartupDeps;
  private readonly reported = new Map<string, string>();
  /** Aborted by `stop()`: no further rounds. */
  private readonly halt = new AbortController();

  constructor(deps: StartupDeps) {
    this.d = deps;
  }

  /** Runs every check; until all pass, runs them again with backoff in the background. Resolves after the first round. */
  async run(): Promise<boolean> {
    const ok = await this.round();
    if (!ok) void this.recheck();
    return ok;
  }

  stop(): void {
    this.halt.abort();
  }

  private async recheck(): Promise<void> {
    const halt = this.halt.signal;
    for (let attempt = 1; !halt.aborted; attempt++) {
      await pause(backoffDelay(attempt, RECHECK.minMs, RECHECK.maxMs), halt);
      if (halt.aborted || (await this.round())) return;
    }
  }

  private async round(): Promise<boolean> {
    const [permissions, template] = await Promise.all([this.checkPermissions(), this.checkTemplate()]);
    this.record(PERMISSIONS_CHECK, permissions);
    this.record(TEMPLATE_CHECK, template);
    return permissions.ok && template.ok;
  }

  private record(check: string, outcome: Outcome): void {
    const { health, log } = this.d;
    if (outcome.ok) {
      startupPhase(`check:${check}`);
      health.pass(check);
      if (this.reported.has(check)) log.info({ check }, `start-up check ${check} passes now`);
      else log.debug({ check }, `start-up check ${check} passed`);
      this.reported.delete(check);
      return;
    }
    const reason = outcome.reason ?? 'failed';
    health.fail(check, outcome.fix ? `${reason}; fix: ${outcome.fix}` : reason);
    if (this.reported.get(check) !== reason) {
      log.error({ check, fix: outcome.fix }, `start-up check ${check} failed, not ready: ${reason}`);
      this.reported.set(check, reason);
    }
  }

  private async checkPermissions(): Promise<Outcome> {
    try {
      const report = await checkAccess(this.d.rest, this.d.namespace, this.d.permissions);
      if (!report.missing.length) return { ok: true };
      return { ok: false, reason: `the launcher lacks ${report.missing.map(describePermission).join(', ')}`, fix: report.fix };
    } catch (err) {
      const { message, fix } = explain(kubeFailure(err), { needs: [REVIEW_ACCESS], namespace: this.d.namespace });
      return { ok: false, reason: `cannot check permissions: ${message}`, ...(fix ? { fix } : {}) };
    }
  }

  private checkTemplate(): Promise<Outcome> {
    return dryRunJob(this.d.rest, this.d.namespace, this.d.sampleJob);
  }
}
