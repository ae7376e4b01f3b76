/**
 * Knative OIDC tokens as a cluster issues them, and the forgeries a verifier must refuse.
 * Real tokens come from the TokenRequest API of real ServiceAccounts, so the API server's own
 * issuer and signing keys are used.
 */
import { CoreV1Api, OpenidApi, type KubeConfig } from '@kubernetes/client-node';
import { decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';

/** Creates the ServiceAccount when missing. */
export async function ensureServiceAccount(admin: KubeConfig, namespace: string, name: string): Promise<void> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch((err: { code?: number }) => {
    if (err.code !== 409) throw err;
  });
}

/** A token the API server issues for ServiceAccount `namespace/name` with `audience`. */
export async function mintToken(admin: KubeConfig, namespace: string, name: string, audience: string, expirationSeconds = 600): Promise<string> {
  await ensureServiceAccount(admin, namespace, name);
  const tr = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [audience], expirationSeconds } } });
  const token = tr.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  return token;
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** `token` with its claims replaced by `claims` and its signature kept. */
export function withClaims(token: string, claims: Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.');
  const changed = { ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), ...claims };
  return `${header}.${b64url(changed)}.${signature}`;
}

/** The same claims, unsigned: `alg: none`, empty signature. */
export function unsigned(token: string): string {
  const { kid } = decodeProtectedHeader(token);
  return `${b64url({ alg: 'none', typ: 'JWT', kid })}.${b64url(decodeJwt(token))}.`;
}

/** The cluster's first published signing key. */
export async function clusterKey(admin: KubeConfig): Promise<JWK> {
  const raw: unknown = await admin.makeApiClient(OpenidApi).getServiceAccountIssuerOpenIDKeyset();
  const set = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { keys: JWK[] };
  return set.keys[0]!;
}

/** The same claims signed HS256 with the cluster's public key (PEM) as the HMAC secret. */
export async function hmacWithPublicKey(token: string, key: JWK): Promise<string> {
  const pem = await exportSPKI((await importJWK(key, key.alg ?? 'RS256')) as Parameters<typeof exportSPKI>[0]);
  return new SignJWT(decodeJwt(token)).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: key.kid! }).sign(new TextEncoder().encode(pem));
}

/** The same claims signed by a key the cluster does not hold, under the cluster key's `kid`. */
export async function foreignSigned(token: string, kid: string): Promise<string> {
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT(decodeJwt(token)).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(privateKey);
}
