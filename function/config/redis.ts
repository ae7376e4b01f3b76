/**
 * Redis connection settings and the queue key: the environment variables the bridge, the
 * dead-letter sink and `job-robot doctor` share. One of three kinds of Redis:
 *
 * - a single server: REDIS_URL, or REDIS_HOST / REDIS_PORT / REDIS_DB;
 * - Redis Cluster: REDIS_CLUSTER_NODES, a comma-separated list of seed nodes `host:port`;
 * - Sentinel: REDIS_SENTINELS (`host:port,...`) and REDIS_SENTINEL_MASTER (the master's name),
 *   with REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD when the sentinels require them, and
 *   REDIS_SENTINEL_TLS when the sentinels' TLS differs from the data nodes'.
 *
 * REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS and REDIS_TLS_CA apply to the data nodes of every kind;
 * REDIS_TLS_CA also verifies the sentinels.
 */
import { z } from 'zod';
import { baseSchema, envBoolean, envInt, envPem, parseConfig } from './base.ts';
import { familyPrefix, sameSlot } from '../queue/keys.ts';
import type { RedisTarget } from '../queue/connection.ts';

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

/** `host:port,host:port`; IPv6 hosts in brackets (`[::1]:7000`). */
const hostPortList = z.string().transform((text, ctx) => {
  const nodes: { host: string; port: number }[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(part);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(part)} is not host:port (list nodes as host:port,host:port)` });
      return z.NEVER;
    }
    nodes.push({ host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port });
  }
  if (!nodes.length) {
    ctx.addIssue({ code: 'custom', message: 'must list at least one host:port' });
    return z.NEVER;
  }
  return nodes;
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
  REDIS_TLS_CA: envPem.optional(),
  /** Redis Cluster: seed nodes, host:port,host:port (any few masters or replicas). */
  REDIS_CLUSTER_NODES: hostPortList.optional(),
  /** Sentinel: the sentinels, host:port,host:port, and the name of the master they watch. */
  REDIS_SENTINELS: hostPortList.optional(),
  REDIS_SENTINEL_MASTER: z.string().min(1).optional(),
  REDIS_SENTINEL_USERNAME: z.string().min(1).optional(),
  /** From a Secret: the sentinels' own password (REDIS_PASSWORD is the master's). */
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  /** TLS to the sentinels; defaults to REDIS_TLS (sentinels with tls-port usually serve TLS only). */
  REDIS_SENTINEL_TLS: envBoolean.optional(),
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
function redisIssues(env: RedisEnv): [string, string][] {
  const issues: [string, string][] = [];
  if (env.REDIS_URL) {
    for (const v of ['REDIS_HOST', 'REDIS_PORT', 'REDIS_DB', 'REDIS_USERNAME', 'REDIS_TLS'] as const) {
      if (env[v] !== undefined) issues.push([v, 'set either REDIS_URL or the separate REDIS_* variables, not both']);
    }
  }
  const single = (['REDIS_URL', 'REDIS_HOST', 'REDIS_PORT'] as const).filter((v) => env[v] !== undefined);
  if (env.REDIS_CLUSTER_NODES) {
    for (const v of single) issues.push([v, 'names a single server; REDIS_CLUSTER_NODES is set (use one or the other)']);
    if (env.REDIS_DB !== undefined && env.REDIS_DB !== 0) issues.push(['REDIS_DB', 'Redis Cluster has only database 0']);
    if (env.REDIS_SENTINELS) issues.push(['REDIS_SENTINELS', 'set either REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both']);
  }
  if (env.REDIS_SENTINELS) {
    for (const v of single) issues.push([v, 'names a single server; REDIS_SENTINELS is set (the sentinels name the master)']);
    if (!env.REDIS_SENTINEL_MASTER) issues.push(['REDIS_SENTINEL_MASTER', 'is required with REDIS_SENTINELS (the master name the sentinels monitor)']);
  } else {
    for (const v of ['REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_USERNAME', 'REDIS_SENTINEL_PASSWORD', 'REDIS_SENTINEL_TLS'] as const) {
      if (env[v] !== undefined) issues.push([v, 'only applies with REDIS_SENTINELS']);
    }
  }
  return issues;
}

/**
 * The cross-variable check every schema holding `redisFields` applies, as its `.superRefine()` or
 * from within its own: each problem is an issue on the variable it names.
 */
export function refineRedis(env: RedisEnv, ctx: z.RefinementCtx): void {
  for (const [variable, message] of redisIssues(env)) ctx.addIssue({ code: 'custom', path: [variable], message });
}

/**
 * DEAD_LETTER must share the queue's Redis Cluster slot (carry its hash tag): a dead letter and its
 * item's result are written in one script.
 */
export function refineDeadLetterSlot(env: { QUEUE_KEY: string; DEAD_LETTER?: string | undefined }, ctx: z.RefinementCtx): void {
  const issue = (message: string) => ctx.addIssue({ code: 'custom', path: ['DEAD_LETTER'], message });
  if (env.DEAD_LETTER === undefined) return;
  const family = familyPrefix(env.QUEUE_KEY);
  if ('prefix' in family && !sameSlot(env.DEAD_LETTER, family.prefix)) {
    issue(`must carry the queue's hash tag so it shares its Redis Cluster slot, e.g. ${family.prefix}:dead-letter`);
  }
  if (env.DEAD_LETTER === env.QUEUE_KEY) issue('must differ from QUEUE_KEY');
}

/** Where and how to connect, from validated variables (REDIS_PASSWORD wins over the URL's). */
export function redisTargetOf(env: RedisEnv): RedisTarget {
  const fromUrl = env.REDIS_URL;
  const auth = {
    username: fromUrl?.username ?? env.REDIS_USERNAME,
    password: env.REDIS_PASSWORD ?? fromUrl?.password,
    tls: fromUrl?.tls ?? env.REDIS_TLS ?? false,
    ca: env.REDIS_TLS_CA,
  };
  if (env.REDIS_CLUSTER_NODES) return { kind: 'cluster', nodes: env.REDIS_CLUSTER_NODES, ...auth };
  if (env.REDIS_SENTINELS) {
    return {
      kind: 'sentinel',
      sentinels: env.REDIS_SENTINELS,
      master: env.REDIS_SENTINEL_MASTER ?? '',
      db: env.REDIS_DB ?? 0,
      sentinelUsername: env.REDIS_SENTINEL_USERNAME,
      sentinelPassword: env.REDIS_SENTINEL_PASSWORD,
      sentinelTls: env.REDIS_SENTINEL_TLS ?? auth.tls,
      ...auth,
    };
  }
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
  .superRefine(refineRedis)
  .transform((env) => ({ redis: redisTargetOf(env), queueKey: env.QUEUE_KEY }));

export type RedisSettings = z.infer<typeof redisSettingsSchema>;

/** Only the Redis settings (for checks that do not run the bridge); throws ConfigError. */
export function loadRedisSettings(env: NodeJS.ProcessEnv = process.env): RedisSettings {
  return parseConfig(redisSettingsSchema, env);
}
