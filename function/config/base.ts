import { z } from 'zod';

import { ConfigError } from './error.ts';

/** Raised at start when an environment variable is missing or wrong. Names the variable. */
export { ConfigError };

/** Boolean env var: accepts true/false/1/0/yes/no, case-insensitive. */
export const envBoolean = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** Positive integer env var. */
export const envInt = (min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max);

/** CA certificates env var: PEM text, not a path. */
export const envPem = z.string().refine((text) => text.includes('-----BEGIN CERTIFICATE-----'), 'must hold PEM certificates');

/**
 * Environment variables shared by every component. Each component `.extend()`s this and, at the
 * end of its schema, `.transform()`s the variables into a camelCased object that starts with
 * `baseSettings(env)`; no code outside a config.ts reads a variable's name.
 */
export const baseSchema = z.object({
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Namespace job-robot works in; defaults to the pod's own namespace file, then `default`. */
  NAMESPACE: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label').max(63).optional(),
  /** Distinguishes several job-robots in one namespace; becomes the instance label. */
  INSTANCE: z
    .string()
    .regex(/^[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/, 'must be a valid label value')
    .max(63)
    .optional(),
  /** Where the component serves HTTP (events, health, metrics); 0 picks any free port. */
  PORT: envInt(0, 65535).default(8080),
});

export type BaseEnv = z.infer<typeof baseSchema>;

/** The base variables, camelCased: what every component's parsed configuration starts with. */
export function baseSettings(env: BaseEnv) {
  return { logLevel: env.LOG_LEVEL, namespace: env.NAMESPACE, instance: env.INSTANCE, port: env.PORT };
}

/** Parses `env` with `schema` once; a failure names every offending variable. */
export function parseConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const variables = [...new Set(result.error.issues.map((issue) => String(issue.path[0] ?? '(env)')))];
  const detail = result.error.issues
    .map((issue) => `${issue.path.join('.') || '(env)'}: ${issue.message}`)
    .join('; ');
  return throwConfig(`invalid configuration: ${detail}`, variables);
}

function throwConfig(message: string, variables: string[]): never {
  throw new ConfigError(message, variables);
}
