/**
 * Who sent a request: the subject of the Knative OIDC token in its `Authorization: Bearer` header.
 *
 * Knative Eventing's senders (a Trigger's filter, a PingSource, a SinkBinding) present a
 * ServiceAccount token that the API server issued for the destination's audience. A token is
 * accepted only when
 * - its signature verifies against the API server's published keys (./issuer-keys.ts), with an
 *   asymmetric algorithm (never `none`, never an HMAC keyed with a public key);
 * - `iss` is the cluster's issuer and `aud` holds exactly the configured audience;
 * - `exp` is in the future and `nbf` in the past, within `clockSkewSeconds`;
 * - `sub` is present.
 * Whether that subject may call is the caller's policy (./senders.ts); this module only
 * authenticates.
 *
 * A sender presents the same token on every request until it renews it (a Trigger's lasts an
 * hour), so a verified token is remembered, by its exact text, for at most `cacheSeconds` and never
 * past its `exp` (the kube-apiserver caches token authentication the same way). A remembered
 * token skips only the signature and claim checks; its expiry is checked on every request. At
 * most `MAX_CACHED_TOKENS` are held. Every refusal is an Unauthenticated (401) with a constant reason; an issuer that
 * cannot be read is a RetryLater (503), since the sender is not at fault.
 */
import { errors, jwtVerify } from 'jose';
import { RetryLater, Unauthenticated } from '../http/errors.ts';
import { IssuerUnavailable, type IssuerKeys } from './issuer-keys.ts';

/** The algorithms the API server signs ServiceAccount tokens with (RSA or ECDSA keys). */
export const TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

/** Characters of a bearer token read at all; a ServiceAccount token is about 1 KB. */
export const MAX_TOKEN_CHARS = 16 * 1024;

/** Verified tokens remembered at once; beyond, the oldest is forgotten. */
export const MAX_CACHED_TOKENS = 256;

export interface SenderVerifierOptions {
  audience: string;
  clockSkewSeconds: number;
  now?: () => Date;
  /** How long a verified token is remembered (default 300 s; 0: never). */
  cacheSeconds?: number;
}

interface Verified {
  subject: string;
  /** Remembered until then (ms since the epoch): the earlier of exp plus the skew and the cache time. */
  until: number;
}

export class SenderVerifier {
  readonly audience: string;
  private readonly keys: IssuerKeys;
  private readonly clockSkewSeconds: number;
  private readonly now: () => Date;
  private readonly cacheMs: number;
  private readonly verified = new Map<string, Verified>();

  constructor(keys: IssuerKeys, opts: SenderVerifierOptions) {
    this.keys = keys;
    this.audience = opts.audience;
    this.clockSkewSeconds = opts.clockSkewSeconds;
    this.now = opts.now ?? (() => new Date());
    this.cacheMs = (opts.cacheSeconds ?? 300) * 1000;
  }

  /** The verified subject (`system:serviceaccount:<namespace>:<name>`) of an Authorization header. */
  async subjectOf(authorization: string | undefined): Promise<string> {
    const token = bearerToken(authorization);
    const now = this.now().getTime();
    const known = this.verified.get(token);
    if (known && now < known.until) return known.subject;
    if (known) this.verified.delete(token);
    let issuer: string;
    try {
      issuer = await this.keys.issuer();
      const { payload } = await jwtVerify(token, this.keys.getKey, {
        algorithms: TOKEN_ALGORITHMS,
        issuer,
        audience: this.audience,
        clockTolerance: this.clockSkewSeconds,
        currentDate: this.now(),
        requiredClaims: ['exp', 'sub'],
      });
      if (typeof payload.sub !== 'string' || payload.sub === '') throw new Unauthenticated('the token names no subject', 'claims-invalid');
      this.remember(token, payload.sub, (payload.exp! + this.clockSkewSeconds) * 1000, now);
      return payload.sub;
    } catch (err) {
      throw refusal(err, this.audience);
    }
  }

  private remember(token: string, subject: string, expiresAt: number, now: number): void {
    const until = Math.min(expiresAt, now + this.cacheMs);
    if (until <= now) return;
    if (this.verified.size >= MAX_CACHED_TOKENS) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { subject, until });
  }
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(authorization: string | undefined): string {
  if (authorization === undefined || authorization.trim() === '') {
    throw new Unauthenticated('no token: send the Knative OIDC token as Authorization: Bearer <JWT>', 'no-token');
  }
  if (authorization.length > MAX_TOKEN_CHARS + 7) throw new Unauthenticated(`the Authorization header exceeds ${MAX_TOKEN_CHARS} characters`, 'malformed-token');
  const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(authorization);
  if (!match) throw new Unauthenticated('the Authorization header is not a Bearer token', 'malformed-token');
  return match[1]!;
}

/** Maps a verification failure onto the answer, with a constant reason. */
function refusal(err: unknown, audience: string): Error {
  if (err instanceof Unauthenticated || err instanceof RetryLater) return err;
  if (err instanceof IssuerUnavailable) return new RetryLater(`${err.message}; the sender should retry`, 503, 5, 'issuer-unavailable');
  if (err instanceof errors.JWTExpired) return new Unauthenticated('the token has expired', 'expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return new Unauthenticated(`the token's audience is not ${JSON.stringify(audience)}`, 'wrong-audience');
    if (err.claim === 'iss') return new Unauthenticated('the token was not issued by this cluster\'s ServiceAccount issuer', 'wrong-issuer');
    if (err.claim === 'nbf') return new Unauthenticated('the token is not valid yet', 'not-yet-valid');
    return new Unauthenticated(`the token's ${err.claim} claim is invalid: ${err.reason}`, 'claims-invalid');
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new Unauthenticated('the token is not signed with an algorithm the API server uses', 'algorithm-refused');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new Unauthenticated('the token\'s signature does not verify', 'bad-signature');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new Unauthenticated('the token is signed by a key the cluster\'s issuer does not publish', 'unknown-key');
  }
  if (err instanceof errors.JOSEError) return new Unauthenticated(`the token is malformed (${err.code})`, 'malformed-token');
  // jose throws a TypeError when a key cannot serve the token's algorithm.
  if (err instanceof TypeError) return new Unauthenticated('the token\'s algorithm does not fit the issuer\'s key', 'algorithm-refused');
  return err instanceof Error ? err : new Error(String(err));
}
