/**
 * Who may call a function: an allow-list of token subjects, and the Knative identities that
 * deliver to each job-robot function by default.
 *
 * Knative Eventing gives every Trigger and source its own ServiceAccount,
 * `<name>-oidc-<group>-<kind>` (knative.dev/eventing pkg/auth/serviceaccount.go), shortened the
 * way knative.dev/pkg's kmeta.ChildName shortens a name longer than 63 characters. Tokens those
 * senders present carry the subject `system:serviceaccount:<namespace>:<that name>`.
 */
import { createHash } from 'node:crypto';

const SA_PREFIX = 'system:serviceaccount:';
const LONGEST = 63;
const MD5_HEX = 32;
const HEAD = LONGEST - MD5_HEX;

/** kmeta.ChildName: `parent + suffix`, hashed and truncated to stay within 63 characters. */
export function childName(parent: string, suffix: string): string {
  if (parent.length <= LONGEST - suffix.length) return parent + suffix;
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  if (HEAD - suffix.length <= 0) {
    let name = parent.slice(0, HEAD) + md5(parent + suffix);
    if (name.length < LONGEST) name += suffix.slice(0, LONGEST - name.length);
    return name.replace(/[^a-zA-Z0-9]+$/, '');
  }
  return parent.slice(0, HEAD - suffix.length) + md5(parent) + suffix;
}

/** The ServiceAccount Knative creates for a resource's OIDC identity. */
export function oidcServiceAccount(name: string, group: string, kind: string): string {
  return childName(name, `-oidc-${group}-${kind}`).toLowerCase();
}

export const serviceAccountSubject = (namespace: string, name: string): string => `${SA_PREFIX}${namespace}:${name}`;

const LAUNCHER_TRIGGER = oidcServiceAccount('job-robot-launcher', 'eventing.knative.dev', 'trigger');
const RESULTS_TRIGGER = oidcServiceAccount('job-robot-results', 'eventing.knative.dev', 'trigger');

/** The Knative senders of each job-robot function in the shipped config/ (broker.yaml, reaper.yaml, results.yaml). */
export const DEFAULT_SENDERS = {
  /** The Trigger job-robot-launcher's filter delivers to the launcher. */
  launcher: [LAUNCHER_TRIGGER],
  /**
   * The broker filter delivers what a function refused for good to the dead-letter sink, as the
   * Trigger whose delivery failed: the launcher's, or the results function's.
   */
  deadLetter: [LAUNCHER_TRIGGER, RESULTS_TRIGGER],
  /** The Trigger job-robot-results's filter delivers the ApiServerSource's Job events to the results function. */
  results: [RESULTS_TRIGGER],
  /** The PingSource job-robot-reaper wakes the reaper. */
  reaper: [oidcServiceAccount('job-robot-reaper', 'sources.knative.dev', 'pingsource')],
} as const;

/**
 * The subjects an allow-list names: a full `system:serviceaccount:<ns>:<name>` subject as is, a
 * bare ServiceAccount name as one in `namespace`.
 */
export function allowedSubjects(entries: readonly string[], namespace: string): Set<string> {
  return new Set(entries.map((e) => (e.startsWith(SA_PREFIX) ? e : serviceAccountSubject(namespace, e))));
}

/** Whether a subject is a ServiceAccount of `namespace`. */
export const inNamespace = (subject: string, namespace: string): boolean => subject.startsWith(`${SA_PREFIX}${namespace}:`);
