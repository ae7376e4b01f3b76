import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';

export interface Permission {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
}

/** What a permission check found missing, with the fix to print. */
export interface AccessReport {
  missing: Permission[];
  fix: string;
}

export const describePermission = (p: Permission): string =>
  `${p.verb} ${p.resource}${p.subresource ? `/${p.subresource}` : ''}${p.group ? `.${p.group}` : ''}`;

/**
 * Asks the API server (SelfSubjectAccessReview) whether this process's identity holds each
 * permission in `namespace`. Returns what is missing; an empty list means all granted.
 */
export async function checkAccess(kc: KubeConfig, namespace: string, permissions: Permission[]): Promise<AccessReport> {
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const results = await Promise.all(
    permissions.map(async (p) => {
      const review = await authz.createSelfSubjectAccessReview({
        body: {
          spec: {
            resourceAttributes: {
              namespace,
              verb: p.verb,
              group: p.group,
              resource: p.resource,
              ...(p.subresource ? { subresource: p.subresource } : {}),
            },
          },
        },
      });
      return review.status?.allowed ? undefined : p;
    }),
  );
  const missing = results.filter((p): p is Permission => !!p);
  return {
    missing,
    fix: missing.length
      ? `grant ${missing.map(describePermission).join(', ')} in namespace ${namespace}: kubectl apply -n ${namespace} -f config/rbac.yaml`
      : '',
  };
}
