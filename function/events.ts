/**
 * CloudEvent constants shared by the bridge (which sends) and the launcher (which accepts).
 * Named once here so the two cannot drift apart.
 */

/** The type of the event the bridge sends for each queue item; the launcher's default filter. */
export const QUEUE_ITEM_TYPE = 'dev.job-robot.queue.item';

/** The CloudEvents specification version job-robot speaks. */
export const SPEC_VERSION = '1.0';
