/** Labels and annotations job-robot puts on every Job it owns. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'job-robot';
export const INSTANCE_LABEL = 'app.kubernetes.io/instance';
export const IDENTITY_LABEL = 'job-robot.dev/identity';

export const EVENT_ID_ANNOTATION = 'job-robot.dev/event-id';
export const EVENT_SOURCE_ANNOTATION = 'job-robot.dev/event-source';
export const EVENT_TYPE_ANNOTATION = 'job-robot.dev/event-type';

/** The labels that mark a Job as owned by this job-robot (instance label only when configured). */
export function ownerLabels(instance?: string): Record<string, string> {
  return instance
    ? { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [INSTANCE_LABEL]: instance }
    : { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
}

/**
 * Label selector for the Jobs this job-robot owns. Without an instance it excludes Jobs that
 * carry any instance label, so an unnamed job-robot never touches a named one's Jobs.
 */
export function ownerSelector(instance?: string): string {
  const managed = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
  return instance ? `${managed},${INSTANCE_LABEL}=${instance}` : `${managed},!${INSTANCE_LABEL}`;
}
