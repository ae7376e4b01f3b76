/**
 * What the reaper may do, checked at start: list and delete Jobs in its namespace. Until the check
 * passes, readiness is false and the log says how to fix it; while it fails, it is re-checked.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { checkAccess, describePermission, type AccessReport, type Permission } from '../kube/access.ts';
import { kubeFailure } from '../kube/api-error.ts';
import type { Health } from '../http/health.ts';
import type { Logger } from '../log.ts';

export const LIST_JOBS: Permission = { verb: 'list', group: 'batch', resource: 'jobs' };
export const DELETE_JOBS: Permission = { verb: 'delete', group: 'batch', resource: 'jobs' };
/** Everything the reaper calls on the API server, and nothing more. */
export const REAPER_PERMISSIONS: Permission[] = [LIST_JOBS, DELETE_JOBS];

/** The readiness check's name. */
export const PERMISSIONS_CHECK = 'permissions';

/** The fix for missing permissions, worded as the shared access check words it. */
export const grantFix = (namespace: string, missing: Permission[]): string =>
  `grant ${missing.map(describePermission).join(', ')} in namespace ${namespace}: kubectl apply -n ${namespace} -f config/rbac.yaml`;

export class AccessWatch {
  private readonly kc: KubeConfig;
  private readonly namespace: string;
  private readonly health: Health;
  private readonly log: Logger;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** Bumped by start/stop, so a check still in flight from an older round schedules nothing. */
  private round = 0;

  constructor(kc: KubeConfig, namespace: string, health: Health, log: Logger, intervalMs = 30_000) {
    this.kc = kc;
    this.namespace = namespace;
    this.health = health;
    this.log = log;
    this.intervalMs = intervalMs;
  }

  /** One SelfSubjectAccessReview round; updates readiness and says whether everything is granted. */
  async check(): Promise<boolean> {
    let report: AccessReport;
    try {
      report = await checkAccess(this.kc, this.namespace, REAPER_PERMISSIONS);
    } catch (err) {
      const f = kubeFailure(err);
      this.health.fail(PERMISSIONS_CHECK, `cannot check permissions: ${f.message}`);
      this.log.warn({ code: f.code, reason: f.reason }, `permission check failed, retrying in ${this.intervalMs} ms: ${f.message}`);
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

  /** Checks now, then every interval until the check passes. */
  start(): void {
    this.stop();
    const round = this.round;
    const tick = async () => {
      if ((await this.check()) || round !== this.round) return;
      this.timer = setTimeout(() => void tick(), this.intervalMs);
      this.timer.unref();
    };
    void tick();
  }

  /** A run was refused (403): readiness off with `fix`, and watch until the grant is back. */
  lost(fix: string): void {
    this.health.fail(PERMISSIONS_CHECK, fix);
    this.stop();
    this.timer = setTimeout(() => this.start(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.round++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
