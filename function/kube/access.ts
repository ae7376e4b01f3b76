import type { V1SelfSubjectAccessReview } from '@kubernetes/client-node';
import { rbacFix } from './failures.ts';
import type { Permission } from './permissions.ts';
import type { KubeRest } from './rest.ts';

/** What a permission check found missing, with the fix to print. */
export interface AccessReport {
  missing: Permission[];
  fix: string;
}

/** The call a permission check makes: every authenticated identity may create SelfSubjectAccessReviews. */
export const REVIEW_ACCESS: Permission = { verb: 'create', group: 'authorization.k8s.io', resource: 'selfsubjectaccessreviews' };

/**
 * Asks the API server (SelfSubjectAccessReview) whether this process's identity holds each
 * permission in `namespace`. Returns what is missing; an empty list means all granted. The reviews
 * share the client's connections (one TLS handshake, not one per review).
 */
export async function checkAccess(rest: KubeRest, namespace: string, permissions: readonly Permission[]): Promise<AccessReport> {
  const results = await Promise.all(
    permissions.map(async (p) => {
      const resourceAttributes = { namespace, verb: p.verb, group: p.group, resource: p.resource, ...(p.subresource ? { subresource: p.subresource } : {}) };
      const body = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes } };
      const review = await rest.post<V1SelfSubjectAccessReview>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { body });
      return review.status?.allowed ? undefined : p;
    }),
  );
  const missing = results.filter((p): p is Permission => !!p);
  return { missing, fix: missing.length ? rbacFix(namespace, missing) : '' };
}
