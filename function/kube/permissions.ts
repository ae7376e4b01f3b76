import { launcherPermissions } from '../launcher/startup.ts';
import { REAPER_PERMISSIONS } from '../reaper/access.ts';
import type { Permission } from './access.ts';

/**
 * Every Kubernetes permission job-robot's code uses: the union of what the launcher (counting
 * active Jobs, its widest setting) and the reaper check for at start. `job-robot doctor` checks it
 * for the ServiceAccount, and the RBAC matrix test holds config/rbac.yaml to exactly this list.
 */
export const JOB_ROBOT_PERMISSIONS: readonly Permission[] = [...launcherPermissions(true), ...REAPER_PERMISSIONS].filter(
  (p, i, all) =>
    all.findIndex((q) => q.verb === p.verb && q.group === p.group && q.resource === p.resource && q.subresource === p.subresource) === i,
);
