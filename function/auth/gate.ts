/**
 * The HTTP gate in front of a function's entry points: who may call, checked before the body is
 * read. `SenderAuth.from(settings, ...)` builds it from the function's configuration:
 *
 * - enabled: a request needs a Knative OIDC token for the function's audience (./sender-verifier.ts);
 *   `senders()` then admits the allow-listed subjects only, `namespace()` any ServiceAccount of the
 *   function's namespace. 401 for a missing or invalid token, 403 for a sender not allowed, 503
 *   while the cluster's keys cannot be read. Each refusal is counted by status and reason.
 * - disabled: every gate lets everyone in, and the start-up log says so at warn level.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Counter, type Registry } from 'prom-client';
import type { AuthSettings } from '../config/auth.ts';
import type { KubeRest } from '../kube/rest.ts';
import { Forbidden, HttpError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import { startupPhase } from '../startup-trace.ts';
import { IssuerKeys } from './issuer-keys.ts';
import { SenderVerifier } from './sender-verifier.ts';
import { allowedSubjects, inNamespace } from './senders.ts';

const REFUSALS = 'job_robot_sender_refusals_total';

/** The refusal counter of a registry, created once per registry. */
function refusalCounter(registry: Registry): Counter<'status' | 'reason'> {
  const existing = registry.getSingleMetric(REFUSALS);
  if (existing) return existing as Counter<'status' | 'reason'>;
  return new Counter({ name: REFUSALS, help: 'Requests refused at the sender check, by status (401, 403, 503) and reason', labelNames: ['status', 'reason'], registers: [registry] });
}

/** The gate with authentication disabled: everyone may call. */
export const admitAnyone: RequestHandler = (_req: Request, _res: Response, next: NextFunction) => next();

export interface SenderAuthDeps {
  /** The component's API connections, over which the issuer's keys are read; needed only when authentication is enabled. */
  rest: KubeRest | undefined;
  namespace: string;
  log: Logger;
  registry: Registry;
  /** The verifier's clock (tests). */
  now?: () => Date;
}

export class SenderAuth {
  private readonly verifier: SenderVerifier | undefined;
  private readonly keys: IssuerKeys | undefined;
  private readonly allowed: Set<string>;
  private readonly namespaceName: string;
  private readonly refusals: Counter<'status' | 'reason'>;
  private readonly log: Logger;

  private constructor(settings: AuthSettings, deps: SenderAuthDeps) {
    this.log = deps.log;
    this.namespaceName = deps.namespace;
    this.allowed = allowedSubjects(settings.senders, deps.namespace);
    this.refusals = refusalCounter(deps.registry);
    if (settings.enabled) {
      if (!deps.rest) throw new Error('sender authentication needs Kubernetes credentials to read the issuer\'s keys');
      this.keys = new IssuerKeys(deps.rest, { now: deps.now ? () => deps.now!().getTime() : Date.now });
      this.verifier = new SenderVerifier(this.keys, { audience: settings.audience, clockSkewSeconds: settings.clockSkewSeconds, ...(deps.now ? { now: deps.now } : {}) });
    }
  }

  static from(settings: AuthSettings, deps: SenderAuthDeps): SenderAuth {
    return new SenderAuth(settings, deps);
  }

  get enabled(): boolean {
    return this.verifier !== undefined;
  }

  /** Logs how callers are checked: at warn when nobody is. */
  announce(what: string): void {
    if (!this.verifier) {
      this.log.warn(
        { oidcAuthentication: 'disabled' },
        `SENDER AUTHENTICATION IS OFF (OIDC_AUTHENTICATION=disabled): anyone who can reach this port may ${what}. Use this for local runs only.`,
      );
      return;
    }
    this.log.info({ oidcAuthentication: 'enabled', audience: this.verifier.audience, allowedSenders: [...this.allowed] }, 'callers must present a Knative OIDC token');
  }

  /** Reads the issuer's keys now, so the first request does not wait; a failure is retried on demand. */
  async warm(): Promise<void> {
    if (!this.keys) return;
    try {
      await this.keys.issuer();
      startupPhase('issuer-keys');
      this.log.debug({ keyIds: this.keys.keyIds() }, 'read the ServiceAccount issuer\'s keys');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot read the ServiceAccount issuer\'s keys yet; requests get 503 until it can');
    }
  }

  /** Admits the allow-listed senders only. */
  senders(): RequestHandler {
    return this.gate((subject) => this.allowed.has(subject), 'is not an allowed sender');
  }

  /** Admits any ServiceAccount of the function's namespace (read-only routes). */
  namespace(): RequestHandler {
    return this.gate((subject) => inNamespace(subject, this.namespaceName), `is not a ServiceAccount of namespace ${this.namespaceName}`);
  }

  private gate(may: (subject: string) => boolean, why: string): RequestHandler {
    const verifier = this.verifier;
    if (!verifier) return admitAnyone;
    return async (req: Request, res: Response, next: NextFunction) => {
      try {
        const subject = await verifier.subjectOf(req.get('authorization'));
        if (!may(subject)) throw new Forbidden(`sender ${JSON.stringify(subject.slice(0, 330))} ${why}`, 'sender-not-allowed');
        res.locals['sender'] = subject;
        next();
      } catch (err) {
        if (err instanceof HttpError) this.refusals.inc({ status: String(err.status), reason: err.reason });
        // The body is never read: close the connection rather than drain what a refused caller sends.
        res.set('Connection', 'close');
        next(err);
      }
    };
  }
}
