/**
 * What the reaper may do, checked at start: list and delete Jobs in its namespace. Until the check
 * passes, readiness is false and the log says how to fix it; while it fails, it is re-checked with
 * backoff.
 */
import { backoffDelay } from '../async/backoff.ts';
import { pause } from '../async/wait.ts';
import { checkAccess, REVIEW_ACCESS, type AccessReport } from '../kube/access.ts';
import { kubeFailure } from '../kube/api-error.ts';
import { explain } from '../kube/failures.ts';
import { describePermission, REAPER_PERMISSIONS } from '../kube/permissions.ts';
import type { KubeRest } from '../kube/rest.ts';
import type { Health } from '../http/health.ts';
import type { Logger } from '../log.ts';

/** The readiness check's name. */
export const PERMISSIONS_CHECK = 'permissions';

/** Backoff between failing checks: 1-2 s at first, doubling to 15-30 s. */
const RECHECK = { minMs: 2_000, maxMs: 30_000 };

export class AccessWatch {
  private readonly rest: KubeRest;
  private readonly namespace: string;
  private readonly health: Health;
  private readonly log: Logger;
  /** Aborted by start/stop/lost, so the checks of an older watch schedule nothing. */
  private halt = new AbortController();

  constructor(rest: KubeRest, namespace: string, health: Health, log: Logger) {
    this.rest = rest;
    this.namespace = namespace;
    this.health = health;
    this.log = log;
  }

  /** One SelfSubjectAccessReview round; updates readiness and says whether everything is granted. */
  async check(): Promise<boolean> {
    let report: AccessReport;
    try {
      report = await checkAccess(this.rest, this.namespace, REAPER_PERMISSIONS);
    } catch (err) {
      const f = kubeFailure(err);
      const { message, fix } = explain(f, { needs: [REVIEW_ACCESS], namespace: this.namespace });
      this.health.fail(PERMISSIONS_CHECK, fix ? `cannot check permissions: ${message}; fix: ${fix}` : `cannot check permissions: ${message}`);
      this.log.warn({ code: f.code, reason: f.reason, fix }, `permission check failed, retrying with backoff: ${message}`);
      return false;
    }
    if (report.missing.length) {
      this.health.fail(PERMISSIONS_CHECK, report.fix);
      this.log.error({ missing: report.missing.map(describePermission), fix: report.fix }, 'the reaper lacks permissions it needs');
      return false;
    }
    this.health.pass(PERMISSIONS_CHECK);
    this.log.debug({ namespace: this.namespace }, 'permissions granted: list, delete jobs.batch');
    return true;
  }

  /** Checks now, then with backoff until the check passes. */
  start(): void {
    void this.watch(this.restart(), false);
  }

  /** A run was refused (403): readiness off with `fix`, and watch until the grant is back. */
  lost(fix: string): void {
    this.health.fail(PERMISSIONS_CHECK, fix);
    void this.watch(this.restart(), true);
  }

  stop(): void {
    this.halt.abort();
  }

  private restart(): AbortSignal {
    this.stop();
    this.halt = new AbortController();
    return this.halt.signal;
  }

  private async watch(halt: AbortSignal, pauseFirst: boolean): Promise<void> {
    for (let attempt = 1; !halt.aborted; attempt++) {
      if (pauseFirst || attempt > 1) await pause(backoffDelay(attempt, RECHECK.minMs, RECHECK.maxMs), halt);
      if (halt.aborted || (await this.check())) return;
    }
  }
}
