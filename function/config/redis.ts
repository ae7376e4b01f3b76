/**
 * Redis connection settings and the queue key: the environment variables the bridge and
 * `job-robot doctor` share. Redis Cluster seed nodes and Sentinel settings join here as further
 * variables and `RedisTarget` kinds.
 */
import { z } from 'zod';
import { baseSchema, envBoolean, envInt, parseConfig } from './base.ts';
import { familyPrefix } from '../bridge/keys.ts';
import type { RedisTarget } from '../bridge/redis.ts';

const pem = z.string().refine((text) => text.includes('-----BEGIN CERTIFICATE-----'), 'must hold PEM certificates');

/** `redis://[user:password@]host:port/db` or `rediss://...` (TLS). */
const redisUrl = z.string().transform((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a URL such as redis://host:6379/0' });
    return z.NEVER;
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    ctx.addIssue({ code: 'custom', message: `scheme must be redis:// or rediss://, not ${url.protocol}//` });
    return z.NEVER;
  }
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,5}$/.test(db)) {
    ctx.addIssue({ code: 'custom', message: 'path must be a database number such as /0' });
    return z.NEVER;
  }
  if (!url.hostname) {
    ctx.addIssue({ code: 'custom', message: 'must name a host' });
    return z.NEVER;
  }
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : 6379,
    db: db === '' ? 0 : Number(db),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    tls: url.protocol === 'rediss:',
  };
});

/** The variables; `.extend()` a schema with them. */
export const redisFields = {
  /** Redis: a URL, or the separate variables below (not both). */
  REDIS_URL: redisUrl.optional(),
  REDIS_HOST: z.string().min(1).optional(),
  REDIS_PORT: envInt(1, 65535).optional(),
  REDIS_DB: envInt(0, 65535).optional(),
  REDIS_USERNAME: z.string().min(1).optional(),
  /** From a Secret; overrides a password in REDIS_URL. */
  REDIS_PASSWORD: z.string().min(1).optional(),
  REDIS_TLS: envBoolean.optional(),
  /** Extra CA certificates (PEM) to verify the Redis server with, on top of the system roots. */
  REDIS_TLS_CA: pem.optional(),
  /** The list (or stream) producers push to. */
  QUEUE_KEY: z
    .string()
    .min(1)
    .max(1024)
    .default('job-robot:queue')
    .superRefine((key, ctx) => {
      const family = familyPrefix(key);
      if ('problem' in family) ctx.addIssue({ code: 'custom', message: family.problem });
    }),
};

const redisObject = z.object(redisFields);
export type RedisEnv = z.infer<typeof redisObject>;

/** Cross-variable problems, as [variable, message]. */
export function redisIssues(env: RedisEnv): [string, string][] {
  const issues: [string, string][] = [];
  if (env.REDIS_URL) {
    for (const v of ['REDIS_HOST', 'REDIS_PORT', 'REDIS_DB', 'REDIS_USERNAME', 'REDIS_TLS'] as const) {
      if (env[v] !== undefined) issues.push([v, 'set either REDIS_URL or the separate REDIS_* variables, not both']);
    }
  }
  return issues;
}

/** Where and how to connect, from validated variables (REDIS_PASSWORD wins over the URL's). */
export function redisTargetOf(env: RedisEnv): RedisTarget {
  const fromUrl = env.REDIS_URL;
  return {
    kind: 'standalone',
    host: fromUrl?.host ?? env.REDIS_HOST ?? '127.0.0.1',
    port: fromUrl?.port ?? env.REDIS_PORT ?? 6379,
    db: fromUrl?.db ?? env.REDIS_DB ?? 0,
    username: fromUrl?.username ?? env.REDIS_USERNAME,
    password: env.REDIS_PASSWORD ?? fromUrl?.password,
    tls: fromUrl?.tls ?? env.REDIS_TLS ?? false,
    ca: env.REDIS_TLS_CA,
  };
}

const redisSettingsSchema = baseSchema
  .extend(redisFields)
  .superRefine((env, ctx) => {
    for (const [variable, message] of redisIssues(env)) ctx.addIssue({ code: 'custom', path: [variable], message });
  })
  .transform((env) => ({ redis: redisTargetOf(env), queueKey: env.QUEUE_KEY }));

export type RedisSettings = z.infer<typeof redisSettingsSchema>;

/** Only the Redis settings (for checks that do not run the bridge); throws ConfigError. */
export function loadRedisSettings(env: NodeJS.ProcessEnv = process.env): RedisSettings {
  return parseConfig(redisSettingsSchema, env);
}
