/**
 * Copy, then decorate: the Job for one event, built from the operator's template. Pure.
 * The event reaches the Job only as the name, the identity label and annotations, environment
 * variable values and (opt-in) the first container's args: never as a field that could choose the
 * image, the service account, privileges, volumes, host namespaces or resources. A Job that could
 * not be created or started is never built (exec-bounds.ts).
 */
import type { V1Container, V1EnvVar, V1Job, V1PodSecurityContext, V1SecurityContext } from '@kubernetes/client-node';
import {
  EVENT_ID_ANNOTATION,
  EVENT_SOURCE_ANNOTATION,
  EVENT_TYPE_ANNOTATION,
  IDENTITY_LABEL,
  INSTANCE_LABEL,
  ownerLabels,
} from '../kube/labels.ts';
import { identityHash, jobName } from '../kube/names.ts';
import { EVENT_ENV_NAMES } from './event-env.ts';
import { checkJobFits } from './exec-bounds.ts';

export interface JobSettings {
  prefix: string;
  instance?: string | undefined;
  /** ttlSecondsAfterFinished when the template sets none. */
  ttlSeconds: number;
  /** activeDeadlineSeconds when the template sets none (undefined: no deadline). */
  activeDeadlineSeconds?: number | undefined;
  /** Pod ServiceAccount when the template names none. */
  serviceAccount: string;
}

export interface JobInput {
  source: string;
  id: string;
  type: string;
  env: V1EnvVar[];
  args?: string[] | undefined;
}

/**
 * The kubelet expands `$(NAME)` in env values and args to other variables of the container
 * (a template's secrets among them) and turns `$$` into `$`. Doubling every `$` makes the value
 * reach the process exactly as the event sent it.
 */
export const literal = (value: string): string => value.replaceAll('$', () => '$$');

/**
 * The Job for one event. Never mutates `template`. Throws PayloadTooLarge (413) when the Job is
 * beyond what the API server stores or what a container's exec can take.
 */
export function buildJob(template: V1Job, settings: JobSettings, input: JobInput): V1Job {
  return buildJobBody(template, settings, input).job;
}

/**
 * Each template's JSON, serialized once: parsing it is the cheapest deep copy of plain data (a
 * template comes from YAML or JSON text), cheaper than structuredClone on every event.
 */
const templateJson = new WeakMap<V1Job, string>();

function copyOf(template: V1Job): V1Job {
  let json = templateJson.get(template);
  if (json === undefined) templateJson.set(template, (json = JSON.stringify(template)));
  return JSON.parse(json) as V1Job;
}

/** `buildJob`, with the Job's JSON: measured once for its limits, and sent as it is. */
export function buildJobBody(template: V1Job, settings: JobSettings, input: JobInput): { job: V1Job; json: string } {
  const job = copyOf(template);
  const labels = { ...template.metadata?.labels };
  // An instance label the launcher did not set would hide the Job from its own selector.
  if (!settings.instance) delete labels[INSTANCE_LABEL];
  job.metadata = {
    name: jobName(settings.prefix, input.source, input.id),
    labels: { ...labels, ...ownerLabels(settings.instance), [IDENTITY_LABEL]: identityHash(input.source, input.id) },
    annotations: {
      ...template.metadata?.annotations,
      [EVENT_ID_ANNOTATION]: input.id,
      [EVENT_SOURCE_ANNOTATION]: input.source,
      [EVENT_TYPE_ANNOTATION]: input.type,
    },
  };
  const spec = job.spec!;
  spec.ttlSecondsAfterFinished ??= settings.ttlSeconds;
  spec.podReplacementPolicy ??= 'Failed';
  if (settings.activeDeadlineSeconds !== undefined) spec.activeDeadlineSeconds ??= settings.activeDeadlineSeconds;

  // The pods carry the owner labels too: the NetworkPolicy (config/network-policy.yaml) selects
  // Job pods by them, and the admission policy refuses a Job whose pods lack them.
  const podLabels = { ...spec.template.metadata?.labels };
  if (!settings.instance) delete podLabels[INSTANCE_LABEL];
  spec.template.metadata = { ...spec.template.metadata, labels: { ...podLabels, ...ownerLabels(settings.instance) } };
  const pod = spec.template.spec!;
  if (!pod.serviceAccountName && !pod.serviceAccount) pod.serviceAccountName = settings.serviceAccount;
  pod.automountServiceAccountToken ??= false;
  const linux = pod.os?.name !== 'windows';
  if (linux) pod.securityContext = restrictedPod(pod.securityContext);

  const env = input.env.map((e) => ({ name: e.name, value: literal(e.value ?? '') }));
  const decorate = (c: V1Container) => {
    c.env = [...(c.env ?? []).filter((e) => !EVENT_ENV_NAMES.has(e.name)), ...env];
    if (linux) c.securityContext = restrictedContainer(c.securityContext);
  };
  pod.containers.forEach(decorate);
  pod.initContainers?.forEach(decorate);
  if (input.args) pod.containers[0]!.args = input.args.map(literal);
  return { job, json: checkJobFits(job) };
}

/** Pod-level defaults of the restricted pod security level, where the template is silent. */
function restrictedPod(sc: V1PodSecurityContext | undefined): V1PodSecurityContext {
  const out = { ...sc };
  // A template that asks for uid 0 gets it (and the restricted level refuses it loudly).
  if (out.runAsUser !== 0) out.runAsNonRoot ??= true;
  out.seccompProfile ??= { type: 'RuntimeDefault' };
  return out;
}

/** Container-level defaults of the restricted pod security level, where the template is silent. */
function restrictedContainer(sc: V1SecurityContext | undefined): V1SecurityContext {
  const out = { ...sc };
  if (!out.privileged) out.allowPrivilegeEscalation ??= false;
  out.capabilities ??= { drop: ['ALL'] };
  return out;
}
