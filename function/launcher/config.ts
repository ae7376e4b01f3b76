import { z } from 'zod';
import { baseSchema, baseSettings, envInt, parseConfig } from '../config/base.ts';
import { authFields, authSettings, refineAuth } from '../config/auth.ts';
import { kubeFields } from '../config/kube.ts';
import { DEFAULT_SENDERS } from '../auth/senders.ts';
import { QUEUE_ITEM_TYPE } from '../events.ts';
import { podServiceAccount } from '../kube/job-template.ts';
import { isValidPrefix, MAX_PREFIX_LENGTH } from '../kube/names.ts';
import { MAX_ARG_STRLEN, MAX_EVENT_BYTES_LIMIT } from './exec-bounds.ts';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Optional integer variable: unset or empty means "not configured". */
const optionalInt = (min: number, max: number) =>
  z.preprocess((v) => (v === '' ? undefined : v), envInt(min, max).optional());

/** The launcher's environment variables, on top of the base and the Kubernetes API deadline. */
export const launcherSchema = baseSchema.extend({
  ...kubeFields,
  ...authFields,
  /** Job template file (a batch/v1 Job in YAML or JSON); unset = the built-in pi Job. */
  JOB_TEMPLATE_PATH: z.string().min(1).optional(),
  JOB_NAME_PREFIX: z
    .string()
    .default('job-robot-')
    .refine(isValidPrefix, `must start with a lowercase letter, hold only [-a-z0-9] and be at most ${MAX_PREFIX_LENGTH} characters`),
  /** Comma-separated CloudEvent types to accept; `*` accepts any. */
  ACCEPTED_TYPES: z
    .string()
    .default(QUEUE_ITEM_TYPE)
    .transform((s) => s.split(',').map((t) => t.trim()).filter(Boolean))
    .refine((types) => types.length > 0, 'must name at least one CloudEvent type (or *)'),
  /**
   * Bound on one event's hand-off to its Job (UTF-8 bytes of the CE_* values). At most
   * MAX_EVENT_BYTES_LIMIT: beyond it, one variable could be more than Linux passes to an exec.
   */
  MAX_EVENT_BYTES: envInt(1024)
    .max(
      MAX_EVENT_BYTES_LIMIT,
      `must be at most ${MAX_EVENT_BYTES_LIMIT}: an event may put it all in one variable, and Linux refuses any NAME=value over ${MAX_ARG_STRLEN} bytes (MAX_ARG_STRLEN)`,
    )
    .default(64 * 1024),
  /** Bound on a request body (a batch holds several events). */
  MAX_REQUEST_BYTES: envInt(1024, 16 * 1024 * 1024).default(1024 * 1024),
  MAX_BATCH_EVENTS: envInt(1, 1000).default(100),
  /** Cap on active (unfinished) Jobs this launcher owns; 0 = no cap. */
  MAX_ACTIVE_JOBS: envInt(0, 1_000_000).default(100),
  /** ttlSecondsAfterFinished for Jobs whose template sets none: a safety net beside the reaper. */
  JOB_TTL_SECONDS: envInt(0, 10 * 365 * 86400).default(7 * 86400),
  /** activeDeadlineSeconds for Jobs whose template sets none; unset = no deadline. */
  ACTIVE_DEADLINE_SECONDS: optionalInt(1, 10 * 365 * 86400),
  /** ServiceAccount for the Jobs' pods when the template names none. */
  JOB_SERVICE_ACCOUNT: podServiceAccount.max(253).regex(DNS1123_SUBDOMAIN, 'must be a DNS-1123 subdomain').default('job-robot-job'),
  /** Opt-in: top-level data field holding an array of strings that becomes the first container's args. */
  ARGS_FIELD: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, 'must be a field name: a letter or _, then [A-Za-z0-9_-]')
    .optional(),
  /** Retry-After (seconds) for answers that say "later" when the API server names no time. */
  RETRY_AFTER_SECONDS: envInt(1, 3600).default(10),
}).superRefine(refineAuth).transform((env) => ({
  ...baseSettings(env),
  auth: authSettings(env, DEFAULT_SENDERS.launcher),
  kubeTimeoutSeconds: env.KUBE_TIMEOUT_SECONDS,
  jobTemplatePath: env.JOB_TEMPLATE_PATH,
  jobNamePrefix: env.JOB_NAME_PREFIX,
  acceptedTypes: env.ACCEPTED_TYPES,
  maxEventBytes: env.MAX_EVENT_BYTES,
  maxRequestBytes: env.MAX_REQUEST_BYTES,
  maxBatchEvents: env.MAX_BATCH_EVENTS,
  maxActiveJobs: env.MAX_ACTIVE_JOBS,
  jobTtlSeconds: env.JOB_TTL_SECONDS,
  activeDeadlineSeconds: env.ACTIVE_DEADLINE_SECONDS,
  jobServiceAccount: env.JOB_SERVICE_ACCOUNT,
  argsField: env.ARGS_FIELD,
  retryAfterSeconds: env.RETRY_AFTER_SECONDS,
}));

export type LauncherConfig = z.infer<typeof launcherSchema>;

export function loadLauncherConfig(env: NodeJS.ProcessEnv = process.env): LauncherConfig {
  return parseConfig(launcherSchema, env);
}
