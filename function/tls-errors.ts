/**
 * Node/OpenSSL error codes for a certificate that cannot be verified: configuration (a missing CA),
 * not an outage and not the item's fault. Shared by the bridge's delivery outcome (the sink's
 * certificate, K_CA_CERTS) and the Redis connection's diagnosis (REDIS_TLS_CA).
 */
export const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
