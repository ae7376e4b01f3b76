/**
 * The cluster's ServiceAccount token issuer, as the API server publishes it: the issuer name from
 * OIDC discovery (`/.well-known/openid-configuration`) and the signing keys from `/openid/v1/jwks`.
 * Both are read over the component's API connections (kube/rest.ts) with job-robot's own credentials (every
 * ServiceAccount may read them: the default `system:service-account-issuer-discovery` binding),
 * so the API server's TLS and authentication are the same as for every other call.
 *
 * Keys are cached. A token naming a key id the cache does not hold triggers one refetch (shared by
 * every request waiting on it, at most once per `refetchCooldownMs`), so a rotated signing key is
 * picked up without a restart, and a stream of tokens with made-up key ids cannot turn into a
 * stream of API calls. The cached set is also refreshed when it is older than `maxAgeMs`. While
 * nothing could be read yet, reads are retried at most once per `retryMs`; requests meanwhile get
 * IssuerUnavailable at once.
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { errors } from 'jose';
import type { KubeRest } from '../kube/rest.ts';

/** The issuer could not be read from the API server: a caller should come back later. */
export class IssuerUnavailable extends Error {
  override name = 'IssuerUnavailable';
}

export interface IssuerKeysOptions {
  refetchCooldownMs?: number;
  maxAgeMs?: number;
  retryMs?: number;
  now?: () => number;
}

interface Loaded {
  issuer: string;
  keys: ReturnType<typeof createLocalJWKSet>;
  kids: Set<string>;
  at: number;
}

/** Bytes of a discovery document or key set read from the API server; a real one is a few KB. */
const MAX_DOCUMENT_BYTES = 256 * 1024;

export class IssuerKeys {
  private readonly rest: KubeRest;
  private readonly refetchCooldownMs: number;
  private readonly maxAgeMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;
  private lastFailure: IssuerUnavailable | undefined;
  private loaded: Loaded | undefined;
  private loading: Promise<Loaded> | undefined;
  private lastFetchAt = Number.NEGATIVE_INFINITY;

  /** `rest`: the component's API connections (its deadline, its pool). */
  constructor(rest: KubeRest, opts: IssuerKeysOptions = {}) {
    this.rest = rest;
    this.refetchCooldownMs = opts.refetchCooldownMs ?? 10_000;
    this.maxAgeMs = opts.maxAgeMs ?? 60 * 60_000;
    this.retryMs = opts.retryMs ?? 1_000;
    this.now = opts.now ?? Date.now;
  }

  /** The issuer name tokens must carry in `iss`; fetches discovery and keys when not yet loaded. */
  async issuer(): Promise<string> {
    return (await this.current()).issuer;
  }

  /** Key ids held now (for logs and tests). */
  keyIds(): string[] {
    return [...(this.loaded?.kids ?? [])];
  }

  /** The key resolver for jose's jwtVerify: the cached set, refetched once on an unknown key id. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const loaded = await this.current();
    try {
      return await loaded.keys(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      if (this.now() - this.lastFetchAt < this.refetchCooldownMs) throw err;
      const fresh = await this.fetch();
      return fresh.keys(header, token);
    }
  };

  private async current(): Promise<Loaded> {
    const loaded = this.loaded;
    if (loaded && this.now() - loaded.at < this.maxAgeMs) return loaded;
    if (loaded) {
      // Stale: refresh, but keep answering from the old set if the API server is away.
      return this.fetch().catch(() => loaded);
    }
    if (this.lastFailure && !this.loading && this.now() - this.lastFetchAt < this.retryMs) throw this.lastFailure;
    return this.fetch();
  }

  /** One fetch at a time; concurrent callers share it. */
  private fetch(): Promise<Loaded> {
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(): Promise<Loaded> {
    this.lastFetchAt = this.now();
    try {
      const loaded = await this.read();
      this.lastFailure = undefined;
      this.loaded = loaded;
      return loaded;
    } catch (err) {
      this.lastFailure = err instanceof IssuerUnavailable ? err : new IssuerUnavailable((err as Error).message);
      throw this.lastFailure;
    }
  }

  private async read(): Promise<Loaded> {
    let discoveryDoc: unknown;
    let keysDoc: unknown;
    try {
      [discoveryDoc, keysDoc] = await Promise.all([
        this.rest.get('/.well-known/openid-configuration', { maxBytes: MAX_DOCUMENT_BYTES }),
        this.rest.get('/openid/v1/jwks', { maxBytes: MAX_DOCUMENT_BYTES, accept: 'application/jwk-set+json, application/json' }),
      ]);
    } catch (err) {
      throw new IssuerUnavailable(`cannot read the ServiceAccount issuer from the API server: ${describe(err)}`);
    }
    const issuer = parseIssuer(discoveryDoc);
    const jwks = parseKeySet(keysDoc);
    const loaded: Loaded = {
      issuer,
      keys: createLocalJWKSet(jwks),
      kids: new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string')),
      at: this.now(),
    };
    return loaded;
  }
}

function describe(err: unknown): string {
  const e = err as { code?: number; message?: string };
  return typeof e?.code === 'number' && e.code > 0 ? `HTTP ${e.code}` : (e?.message ?? String(err)).slice(0, 300);
}

/** The `issuer` of an OIDC discovery document. */
export function parseIssuer(text: unknown): string {
  const doc = parseDocument(text, 'discovery document');
  const issuer = (doc as { issuer?: unknown }).issuer;
  if (typeof issuer !== 'string' || issuer === '') throw new IssuerUnavailable('the API server\'s OIDC discovery document names no issuer');
  return issuer;
}

/** A JSON Web Key Set with at least one key. */
export function parseKeySet(text: unknown): JSONWebKeySet {
  const doc = parseDocument(text, 'key set');
  const keys = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => k !== null && typeof k === 'object')) {
    throw new IssuerUnavailable('the API server\'s key set (/openid/v1/jwks) holds no keys');
  }
  return { keys: keys as JSONWebKeySet['keys'] };
}

function parseDocument(text: unknown, what: string): object {
  // kube/rest.ts has parsed the answer (its size bounded by MAX_DOCUMENT_BYTES).
  if (text !== null && typeof text === 'object') return text;
  if (typeof text !== 'string' || text.length > MAX_DOCUMENT_BYTES) throw new IssuerUnavailable(`the API server's ${what} is not a bounded JSON document`);
  try {
    const doc: unknown = JSON.parse(text);
    if (doc !== null && typeof doc === 'object') return doc;
  } catch {
    // fall through
  }
  throw new IssuerUnavailable(`the API server's ${what} is not JSON`);
}
