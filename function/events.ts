/**
 * CloudEvent constants shared by the parts that send and accept them (bridge, launcher, results).
 * Named once here so senders and receivers cannot drift apart.
 */

/** The type of the event the bridge sends for each queue item; the launcher's default filter. */
export const QUEUE_ITEM_TYPE = 'dev.job-robot.queue.item';

/** The CloudEvents specification version job-robot speaks. */
export const SPEC_VERSION = '1.0';

/**
 * What a Knative ApiServerSource in Resource mode sends for each change to a watched object
 * (knative.dev/eventing pkg/apis/sources/constants.go); the data is the whole object as JSON. The
 * results function reads these for job-robot's own Jobs.
 */
export const APISERVER_ADD_TYPE = 'dev.knative.apiserver.resource.add';
export const APISERVER_UPDATE_TYPE = 'dev.knative.apiserver.resource.update';
export const APISERVER_DELETE_TYPE = 'dev.knative.apiserver.resource.delete';
/** What the three share: the results Trigger filters on it (config/results.yaml). */
export const APISERVER_RESOURCE_PREFIX = 'dev.knative.apiserver.resource.';

/**
 * What the results function answers the Broker with when a Job finishes: the outcome of a queue
 * item, for users' own Triggers.
 */
export const JOB_SUCCEEDED_TYPE = 'dev.job-robot.job.succeeded';
export const JOB_FAILED_TYPE = 'dev.job-robot.job.failed';
/** What the two share: the EventPolicy lets the results Trigger send only these (config/event-policy.yaml). */
export const JOB_OUTCOME_PREFIX = 'dev.job-robot.job.';

/** The extension attribute that marks an event as one job-robot instance's (the Triggers filter on it). */
export const INSTANCE_EXTENSION = 'jobrobot';
/** Its value for a job-robot without INSTANCE, as config/bridge.yaml and config/results.yaml set it. */
export const DEFAULT_INSTANCE_MARK = 'job-robot';
