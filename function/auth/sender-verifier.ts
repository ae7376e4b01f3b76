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
 * authenticates. Every refusal is an Unauthenticated (401) with a constant reason; an issuer that
 * cannot be read is a RetryLater (503), since the sender is not at fault.
 */
import { errors, jwtVerify } from 'jose';
import { RetryLater, Unauthenticated } from '../http/errors.ts';
import { IssuerUnavailable, type IssuerKeys } from './issuer-keys.ts';

/** The algorithms the API server signs ServiceAccount tokens with (RSA or ECDSA keys). */
export const TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

/** Characters of a bearer token read at all; a ServiceAccount token is about 1 KB. */
export const MAX_TOKEN_CHARS = 16 * 1024;

export interface SenderVerifierOptions {
  audience: string;
  clockSkewSeconds: number;
  now?: () => Date;
}

export class SenderVerifier {
  readonly audience: string;
  private readonly keys: IssuerKeys;
  private readonly clockSkewSeconds: number;
  private readonly now: () => Date;

  constructor(keys: IssuerKeys, opts: SenderVerifierOptions) {
    this.keys = keys;
    this.audience = opts.audience;
    this.clockSkewSeconds = opts.clockSkewSeconds;
    this.now = opts.now ?? (() => new Date());
  }

  /** The verified subject (`system:serviceaccount:<namespace>:<name>`) of an Authorization header. */
  async subjectOf(authorization: string | undefined): Promise<string> {
    const token = bearerToken(authorization);
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
      return payload.sub;
    } catch (err) {
      throw refusal(err, this.audience);
    }
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
