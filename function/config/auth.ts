/**
 * Sender authentication settings, shared by the functions Knative delivers to (launcher, reaper,
 * dead-letter sink). `.extend()` a schema with `authFields`, `.superRefine(refineAuth)` it, and
 * put `authSettings(env, defaults)` into its settings.
 *
 * - OIDC_AUTHENTICATION: `enabled` (default) or `disabled`. Disabled means anyone who reaches the
 *   port may call; for local runs only, and the start-up log says so loudly.
 * - OIDC_AUDIENCE: the audience tokens must carry; the destination's `audience` in the Trigger,
 *   PingSource or deadLetterSink. Defaults to K_SERVICE, the Knative Service's name.
 * - OIDC_ALLOWED_SENDERS: comma-separated token subjects that may call
 *   (`system:serviceaccount:<ns>:<name>`, or a bare ServiceAccount name in the function's
 *   namespace). Defaults to the Knative identities that deliver to the function in config/.
 * - OIDC_CLOCK_SKEW_SECONDS: tolerance on `exp` and `nbf`, default 30.
 */
import { z } from 'zod';
import { envInt } from './base.ts';

const SA_SUBJECT = /^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;
const SA_NAME = /^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;

const senderList = z
  .string()
  .transform((s) => s.split(',').map((t) => t.trim()).filter(Boolean))
  .refine((list) => list.length > 0, 'must name at least one sender')
  .refine((list) => list.length <= 100, 'must name at most 100 senders')
  .superRefine((list, ctx) => {
    for (const entry of list) {
      if (entry.length > 330 || !(SA_SUBJECT.test(entry) || SA_NAME.test(entry))) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry.slice(0, 80))} is neither system:serviceaccount:<namespace>:<name> nor a ServiceAccount name` });
      }
    }
  });

export const authFields = {
  OIDC_AUTHENTICATION: z.enum(['enabled', 'disabled']).default('enabled'),
  OIDC_AUDIENCE: z.string().trim().min(1).max(512).optional(),
  /** Set by Knative Serving to the Service's name. */
  K_SERVICE: z.string().trim().min(1).max(253).optional(),
  OIDC_ALLOWED_SENDERS: senderList.optional(),
  OIDC_CLOCK_SKEW_SECONDS: envInt(0, 300).default(30),
};

const authEnv = z.object(authFields);
type AuthEnv = z.infer<typeof authEnv>;

export function refineAuth(env: AuthEnv, ctx: z.RefinementCtx): void {
  if (env.OIDC_AUTHENTICATION === 'enabled' && !env.OIDC_AUDIENCE && !env.K_SERVICE) {
    ctx.addIssue({
      code: 'custom',
      path: ['OIDC_AUDIENCE'],
      message: 'required with OIDC_AUTHENTICATION=enabled outside Knative (no K_SERVICE): set it to the audience of the Trigger, PingSource or deadLetterSink that delivers here, or set OIDC_AUTHENTICATION=disabled for a local run',
    });
  }
}

export interface AuthSettings {
  enabled: boolean;
  audience: string;
  /** Allow-list entries as configured; resolve bare names with auth/senders.ts allowedSubjects. */
  senders: readonly string[];
  clockSkewSeconds: number;
}

export function authSettings(env: AuthEnv, defaultSenders: readonly string[]): AuthSettings {
  return {
    enabled: env.OIDC_AUTHENTICATION === 'enabled',
    audience: env.OIDC_AUDIENCE ?? env.K_SERVICE ?? '',
    senders: env.OIDC_ALLOWED_SENDERS ?? defaultSenders,
    clockSkewSeconds: env.OIDC_CLOCK_SKEW_SECONDS,
  };
}
