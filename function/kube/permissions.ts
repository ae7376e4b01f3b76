/**
 * Who job-robot is on the API server, and every permission its code uses, by part: each part
 * checks its own list at start (SelfSubjectAccessReview), `job-robot doctor` checks their union
 * for the ServiceAccount, and the RBAC matrix test holds config/rbac.yaml to exactly that union.
 */

/** The ServiceAccount job-robot's functions run as (config/rbac.yaml); a Job's pods never run as it. */
export const JOB_ROBOT_SERVICE_ACCOUNT = 'job-robot';

export interface Permission {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
}

export const describePermission = (p: Permission): string =>
  `${p.verb} ${p.resource}${p.subresource ? `/${p.subresource}` : ''}${p.group ? `.${p.group}` : ''}`;

const jobs = (verb: string): Permission => ({ verb, group: 'batch', resource: 'jobs' });
export const CREATE_JOBS = jobs('create');
export const GET_JOBS = jobs('get');
export const LIST_JOBS = jobs('list');
export const WATCH_JOBS = jobs('watch');
export const DELETE_JOBS = jobs('delete');

/** What the launcher calls: create and get Jobs; list and watch them too when it counts active Jobs. */
export function launcherPermissions(countsActiveJobs: boolean): Permission[] {
  return countsActiveJobs ? [CREATE_JOBS, GET_JOBS, LIST_JOBS, WATCH_JOBS] : [CREATE_JOBS, GET_JOBS];
}

/** Everything the reaper calls on the API server, and nothing more. */
export const REAPER_PERMISSIONS: readonly Permission[] = [LIST_JOBS, DELETE_JOBS];

/** The union: the launcher at its widest setting (counting active Jobs) and the reaper. */
export const JOB_ROBOT_PERMISSIONS: readonly Permission[] = [...launcherPermissions(true), ...REAPER_PERMISSIONS].filter(
  (p, i, all) => all.findIndex((q) => describePermission(q) === describePermission(p)) === i,
);
