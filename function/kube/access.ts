import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { CallOptions } from './call-options.ts';
import { rbacFix } from './failures.ts';
import type { Permission } from './permissions.ts';

/** What a permission check found missing, with the fix to print. */
export interface AccessReport {
  missing: Permission[];
  fix: string;
}

/** The call a permission check makes: every authenticated identity may create SelfSubjectAccessReviews. */
export const REVIEW_ACCESS: Permission = { verb: 'create', group: 'authorization.k8s.io', resource: 'selfsubjectaccessreviews' };

/**
 * Asks the API server (SelfSubjectAccessReview) whether this process's identity holds each
 * permission in `namespace`. Returns what is missing; an empty list means all granted. With `calls`,
 * the reviews share its connections and deadline (one TLS handshake instead of one per review).
 */
export async function checkAccess(kc: KubeConfig, namespace: string, permissions: readonly Permission[], calls?: CallOptions): Promise<AccessReport> {
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const results = await Promise.all(
    permissions.map(async (p) => {
      const resourceAttributes = { namespace, verb: p.verb, group: p.group, resource: p.resource, ...(p.subresource ? { subresource: p.subresource } : {}) };
      const review = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes } } }, calls?.call());
      return review.status?.allowed ? undefined : p;
    }),
  );
  const missing = results.filter((p): p is Permission => !!p);
  return { missing, fix: missing.length ? rbacFix(namespace, missing) : '' };
}
